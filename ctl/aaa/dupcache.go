package aaa

import (
	"net/netip"
	"sync"
	"time"
)

// dupKey identifies a request for retransmission detection (RFC 5080 2.2.2):
// source address and port, Identifier and Request Authenticator.
type dupKey struct {
	from netip.AddrPort
	id   byte
	auth [16]byte
}

type dupState int

const (
	dupNew        dupState = iota // first time: process it
	dupInProgress                 // being processed: drop the copy
	dupDone                       // answered: resend the cached answer
)

type dupEntry struct {
	resp    []byte // nil while in progress
	expires int64
}

const dupShards = 16

// dupCache remembers answers for ttl.
type dupCache struct {
	ttl    int64
	shards [dupShards]struct {
		mu sync.Mutex
		m  map[dupKey]dupEntry
	}
}

func newDupCache(ttl time.Duration) *dupCache {
	c := &dupCache{ttl: int64(ttl)}
	for i := range c.shards {
		c.shards[i].m = make(map[dupKey]dupEntry)
	}
	return c
}

func (c *dupCache) shard(k dupKey) int { return int(k.id^k.auth[0]^k.auth[15]) % dupShards }

// begin registers k as in progress unless it is known.
func (c *dupCache) begin(k dupKey, now int64) ([]byte, dupState) {
	sh := &c.shards[c.shard(k)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[k]; ok && e.expires > now {
		if e.resp == nil {
			return nil, dupInProgress
		}
		return e.resp, dupDone
	}
	sh.m[k] = dupEntry{expires: now + c.ttl}
	return nil, dupNew
}

func (c *dupCache) finish(k dupKey, resp []byte, now int64) {
	sh := &c.shards[c.shard(k)]
	sh.mu.Lock()
	sh.m[k] = dupEntry{resp: resp, expires: now + c.ttl}
	sh.mu.Unlock()
}

// abort forgets k (no answer was sent, so a retransmission is processed).
func (c *dupCache) abort(k dupKey) {
	sh := &c.shards[c.shard(k)]
	sh.mu.Lock()
	delete(sh.m, k)
	sh.mu.Unlock()
}

func (c *dupCache) sweep(now int64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if e.expires <= now {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}

func (c *dupCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
