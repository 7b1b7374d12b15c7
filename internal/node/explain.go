package node

import (
	"context"
	"errors"
	"strings"
)

// explain is an error's text for a person: what happened, without the
// chain of library internals that may trail it (a cancelled context is an
// interruption, not an error).
func explain(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
