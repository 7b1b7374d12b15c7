package discoverytest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const interval = time.Second

// hearer collects what a Source hears.
type hearer struct {
	mu    sync.Mutex
	heard []string
}

func (h *hearer) add(a string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.heard = append(h.heard, a)
}

// nextQuery returns what h hears on its Source's next query. Time is
// synctest's: one interval is one query of every Source.
func (h *hearer) nextQuery() []string {
	h.mu.Lock()
	h.heard = nil
	h.mu.Unlock()
	time.Sleep(interval)
	synctest.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	got := slices.Clone(h.heard)
	slices.Sort(got)
	return got
}

// Sources hear every running Source of their partition, themselves
// included, as the sighting function makes the answer; a cut Source hears
// only itself until healed, and a stopped one is heard no more.
func TestLANPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := New(interval, func(n int, txt []string) string { return fmt.Sprintf("%d:%s", n, txt[0]) })
		var wg sync.WaitGroup
		defer wg.Wait() // after cancel: the Sources' Run return
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a, b := lan.Source(), lan.Source()
		ha, hb := &hearer{}, &hearer{}
		_ = a.Publish([]string{"a"})
		_ = b.Publish([]string{"b"})
		wg.Go(func() { _ = a.Run(ctx, ha.add) })
		bctx, stopB := context.WithCancel(ctx)
		wg.Go(func() { _ = b.Run(bctx, hb.add) })
		synctest.Wait()

		for _, step := range []struct {
			name string
			do   func()
			h    *hearer
			want []string
		}{
			{"together", func() {}, ha, []string{"1:a", "2:b"}},
			{"b cut, a hears", func() { lan.Cut(b) }, ha, []string{"1:a"}},
			{"b cut, b hears", func() {}, hb, []string{"2:b"}},
			{"b healed", func() { lan.Heal(b) }, hb, []string{"1:a", "2:b"}},
			{"b republished", func() { _ = b.Publish([]string{"B"}) }, ha, []string{"1:a", "2:B"}},
			{"b stopped", func() { stopB(); synctest.Wait() }, ha, []string{"1:a"}},
		} {
			step.do()
			if got := step.h.nextQuery(); !slices.Equal(got, step.want) {
				t.Errorf("%s: heard %q, want %q", step.name, got, step.want)
			}
		}
	})
}
