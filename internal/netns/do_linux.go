package netns

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on a thread that has entered host i's namespace, so that
// sockets fn opens belong to host i; they stay there when used from any
// goroutine afterwards. The thread then returns to the namespace it came
// from or, if it cannot, is retired with its goroutine.
func (l *LAN) Do(i int, fn func() error) error {
	return DoIn(l.Namespace(i), fn)
}

// DoIn is Do for any namespace by name (such as an Internet's).
func DoIn(name string, fn func() error) error {
	ns, err := os.Open("/run/netns/" + name)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // left locked if the way back fails: the thread then exits
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("netns: %w", err)
			return
		}
		defer self.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netns: enter %s: %w", name, err)
			return
		}
		err = fn()
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
