package xlat

import (
	"sync"
	"sync/atomic"

	"samepath/dp/header"
)

// state is one immutable configuration as the hot path reads it.
type state struct {
	cfg Config
	m   mapper
}

// Runtime is a translation configuration that may change while workers
// translate: the control API replaces it (Set), every worker's
// Translator loads the current one with one atomic pointer load per
// packet, and a packet is translated entirely with the configuration it
// loaded. No lock is taken on the packet path; the old configuration
// stays valid for a packet still using it (the GC frees it after).
type Runtime struct {
	mu  sync.Mutex // serializes Set (control path only)
	cur atomic.Pointer[state]
}

// NewRuntime validates c and returns a Runtime holding it.
func NewRuntime(c Config) (*Runtime, error) {
	rt := &Runtime{}
	if err := rt.Set(c); err != nil {
		return nil, err
	}
	return rt, nil
}

// Set validates c and, if valid, makes it the configuration of every
// packet translated from now on; an invalid c changes nothing and the
// error names the key (ErrConfig).
func (r *Runtime) Set(c Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.setLocked(c)
}

// Update applies f to a copy of the current configuration and Sets the
// result, all under the Runtime's lock, so concurrent updates do not
// lose each other's changes. If f returns an error, nothing changes and
// Update returns it.
func (r *Runtime) Update(f func(c *Config) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.configLocked()
	if err := f(&c); err != nil {
		return err
	}
	return r.setLocked(c)
}

func (r *Runtime) setLocked(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	c.EAM = append([]EAM(nil), c.EAM...)
	r.cur.Store(&state{cfg: c, m: newMapper(&c)})
	return nil
}

// Config returns the current configuration (a copy).
func (r *Runtime) Config() Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.configLocked()
}

func (r *Runtime) configLocked() Config {
	c := r.cur.Load().cfg
	c.EAM = append([]EAM(nil), c.EAM...)
	return c
}

// NewTranslator returns a translator of this Runtime's configuration for
// one worker.
func (r *Runtime) NewTranslator() *Translator {
	return &Translator{rt: r, st: r.cur.Load(), id: 1, scratch: make([]byte, 65536+header.EthernetLen+header.VLANLen)}
}
