package aaa

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"samepath/ctl/store"
)

// DefaultPBKDF2Iter is the PBKDF2-HMAC-SHA256 work factor for stored hashes.
const DefaultPBKDF2Iter = 100_000

// User is a T2 row (FIG. 8).
//
// Credentials are stored per user in one of two forms, chosen per user:
//   - Hash (default): PBKDF2-HMAC-SHA256 "pbkdf2-sha256$ITER$SALT$KEY".
//     Only PAP (User-Password) can be checked against it.
//   - Secret (CHAP: true): the clear password, because CHAP proves knowledge
//     of it with MD5(id || password || challenge) and the server must compute
//     the same. It is protected only by the state file's permissions (0600).
//
// Password is input only: Put hashes it (or keeps it as Secret for CHAP)
// and never stores or shows it.
type User struct {
	ID       string `json:"id" yaml:"id"`
	Password string `json:"password,omitempty" yaml:"password"`
	Hash     string `json:"hash,omitempty" yaml:"password_hash"`
	CHAP     bool   `json:"chap,omitempty" yaml:"chap"`
	Secret   string `json:"secret,omitempty" yaml:"-"`
	DeviceID string `json:"device_id,omitempty" yaml:"device_id"`
	Phone    string `json:"phone,omitempty" yaml:"phone"`
	Disabled bool   `json:"disabled,omitempty" yaml:"disabled"`
	// Stack is what the user's device is given: ipv4, ipv6 or dual.
	// Empty: what the Access-Request hints at (Framed-IP-Address,
	// Framed-IPv6-Prefix, Framed-IPv6-Address, Framed-Interface-Id),
	// else ipv4.
	Stack string `json:"stack,omitempty" yaml:"stack"`
}

// Public returns u without credential material (for display).
func (u User) Public() User {
	u.Password, u.Secret = "", ""
	if u.Hash != "" {
		u.Hash = "pbkdf2-sha256$…"
	}
	return u
}

type userEntry struct {
	u    User
	memo [sha256.Size]byte // HMAC(procKey, password) after a successful PBKDF2 check
	has  bool
}

// Users is T2. Safe for concurrent use.
type Users struct {
	mu      sync.RWMutex
	p       Persister
	iter    int
	procKey [32]byte
	m       map[string]*userEntry
}

// NewUsers returns an empty T2; iter is the PBKDF2 work factor for new hashes.
func NewUsers(p Persister, iter int) *Users {
	if iter <= 0 {
		iter = DefaultPBKDF2Iter
	}
	us := &Users{p: p, iter: iter, m: map[string]*userEntry{}}
	if _, err := rand.Read(us.procKey[:]); err != nil {
		panic(fmt.Sprintf("aaa: random key: %v", err)) // crypto/rand does not fail on Linux
	}
	return us
}

// Load restores T2 from the store.
func (us *Users) Load(s *store.Store) error {
	us.mu.Lock()
	defer us.mu.Unlock()
	return s.ForEach(store.BucketUsers, func(k, v []byte) error {
		var u User
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("load user %s: %w", k, err)
		}
		us.m[u.ID] = &userEntry{u: u}
		return nil
	})
}

// HashPassword returns a PBKDF2-HMAC-SHA256 hash string for password.
func HashPassword(password string, iter int) (string, error) {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key, err := pbkdf2.Key(sha256.New, password, salt[:], iter, 32)
	if err != nil {
		return "", fmt.Errorf("pbkdf2: %w", err)
	}
	enc := base64.RawStdEncoding
	return "pbkdf2-sha256$" + strconv.Itoa(iter) + "$" + enc.EncodeToString(salt[:]) + "$" + enc.EncodeToString(key), nil
}

// checkHash verifies password against a HashPassword string.
func checkHash(hash, password string) (bool, error) {
	f := strings.Split(hash, "$")
	if len(f) != 4 || f[0] != "pbkdf2-sha256" {
		return false, errors.New("unknown password hash format")
	}
	iter, err := strconv.Atoi(f[1])
	if err != nil || iter <= 0 || iter > 10_000_000 {
		return false, errors.New("bad pbkdf2 iteration count")
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(f[2])
	want, err2 := enc.DecodeString(f[3])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, errors.New("bad pbkdf2 salt or key")
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// ValidateUser normalizes u, turning Password into Hash or Secret.
func (us *Users) ValidateUser(u *User) error {
	if u.ID == "" || strings.ContainsAny(u.ID, "\x00") || len(u.ID) > 253 {
		return fmt.Errorf("user id %q: empty, too long or has NUL", u.ID)
	}
	if u.Stack != "" {
		f, err := ParseFamily(u.Stack)
		if err != nil {
			return fmt.Errorf("user %s: stack: %w", u.ID, err)
		}
		u.Stack = f.String()
	}
	if u.Password != "" {
		if u.CHAP {
			u.Secret, u.Hash = u.Password, ""
		} else {
			h, err := HashPassword(u.Password, us.iter)
			if err != nil {
				return fmt.Errorf("user %s: %w", u.ID, err)
			}
			u.Hash, u.Secret = h, ""
		}
		u.Password = ""
	}
	if u.CHAP && u.Secret == "" {
		return fmt.Errorf("user %s: chap needs the clear password", u.ID)
	}
	if !u.CHAP && u.Hash == "" && u.Secret == "" {
		return fmt.Errorf("user %s: no password", u.ID)
	}
	if u.Hash != "" && !strings.HasPrefix(u.Hash, "pbkdf2-sha256$") {
		return fmt.Errorf("user %s: password_hash is not pbkdf2-sha256$ITER$SALT$KEY", u.ID)
	}
	return nil
}

// Put inserts or replaces a user. If u has no password fields, the old
// credentials are kept (to edit device id or phone).
func (us *Users) Put(u User) (uint64, error) {
	us.mu.Lock()
	defer us.mu.Unlock()
	if u.Password == "" && u.Hash == "" && u.Secret == "" {
		if old := us.m[u.ID]; old != nil {
			u.Hash, u.Secret = old.u.Hash, old.u.Secret
			if u.CHAP && u.Secret == "" {
				return 0, fmt.Errorf("user %s: chap needs a new clear password", u.ID)
			}
		}
	}
	if err := us.ValidateUser(&u); err != nil {
		return 0, err
	}
	us.m[u.ID] = &userEntry{u: u}
	return us.p.Enqueue([]store.Op{store.Put(store.BucketUsers, []byte(u.ID), mustJSON(u))}, nil, nil), nil
}

// Delete removes a user.
func (us *Users) Delete(id string) (uint64, error) {
	us.mu.Lock()
	defer us.mu.Unlock()
	if us.m[id] == nil {
		return 0, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	delete(us.m, id)
	return us.p.Enqueue([]store.Op{store.Del(store.BucketUsers, []byte(id))}, nil, nil), nil
}

// Get returns one user (with credentials: callers show Public()).
func (us *Users) Get(id string) (User, bool) {
	us.mu.RLock()
	defer us.mu.RUnlock()
	e := us.m[id]
	if e == nil {
		return User{}, false
	}
	return e.u, true
}

// List returns T2 by id, without credentials.
func (us *Users) List() []User {
	us.mu.RLock()
	out := make([]User, 0, len(us.m))
	for _, e := range us.m {
		out = append(out, e.u.Public())
	}
	us.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Len is the number of users.
func (us *Users) Len() int {
	us.mu.RLock()
	defer us.mu.RUnlock()
	return len(us.m)
}

// Auth failures (Reply-Message texts).
var (
	ErrUnknownUser = errors.New("unknown user")
	ErrBadPassword = errors.New("wrong password")
	ErrDisabled    = errors.New("user disabled")
	ErrNoCHAP      = errors.New("chap not available for this user (password stored as a hash)")
	ErrBadCHAP     = errors.New("malformed CHAP-Password")
)

// CheckPAP verifies a clear password. A successful PBKDF2 check is
// remembered as HMAC(process key, password) so the next logins of the user
// cost one HMAC instead of the PBKDF2 work factor; the memo lives only in
// memory, keyed by a random per-process key, and is dropped on any change.
func (us *Users) CheckPAP(id string, password []byte) (User, error) {
	us.mu.RLock()
	e := us.m[id]
	if e == nil {
		us.mu.RUnlock()
		return User{}, ErrUnknownUser
	}
	u, memo, has := e.u, e.memo, e.has
	us.mu.RUnlock()
	if u.Disabled {
		return u, ErrDisabled
	}
	if u.Secret != "" {
		if subtle.ConstantTimeCompare([]byte(u.Secret), password) != 1 {
			return u, ErrBadPassword
		}
		return u, nil
	}
	mac := hmac.New(sha256.New, us.procKey[:])
	mac.Write(password)
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])
	if has && subtle.ConstantTimeCompare(sum[:], memo[:]) == 1 {
		return u, nil
	}
	ok, err := checkHash(u.Hash, string(password))
	if err != nil {
		return u, fmt.Errorf("user %s: %w", id, err)
	}
	if !ok {
		return u, ErrBadPassword
	}
	us.mu.Lock()
	if cur := us.m[id]; cur == e && cur.u.Hash == u.Hash {
		cur.memo, cur.has = sum, true
	}
	us.mu.Unlock()
	return u, nil
}

// CheckCHAP verifies CHAP-Password (ident || 16-byte response) against
// challenge (CHAP-Challenge, or the Request Authenticator when absent).
func (us *Users) CheckCHAP(id string, chapPassword, challenge []byte) (User, error) {
	us.mu.RLock()
	e := us.m[id]
	us.mu.RUnlock()
	if e == nil {
		return User{}, ErrUnknownUser
	}
	u := e.u
	if u.Disabled {
		return u, ErrDisabled
	}
	if len(chapPassword) != 17 {
		return u, ErrBadCHAP
	}
	if u.Secret == "" {
		return u, ErrNoCHAP
	}
	h := md5.New()
	h.Write(chapPassword[:1])
	h.Write([]byte(u.Secret))
	h.Write(challenge)
	var sum [md5.Size]byte
	if subtle.ConstantTimeCompare(h.Sum(sum[:0]), chapPassword[1:]) != 1 {
		return u, ErrBadPassword
	}
	return u, nil
}
