package ring

import (
	"sync"
	"testing"
)

func TestUmemFrames(t *testing.T) {
	if _, err := NewUmem(make([]byte, 4096), 1000); err == nil {
		t.Error("accepted a frame size that is not a power of two")
	}
	if _, err := NewUmem(make([]byte, 100), 2048); err == nil {
		t.Error("accepted memory that holds no frame")
	}
	u, err := NewUmem(make([]byte, 4*2048), 2048)
	if err != nil {
		t.Fatal(err)
	}
	if u.Frames() != 4 || u.Pool().Len() != 4 {
		t.Fatalf("frames %d, free %d", u.Frames(), u.Pool().Len())
	}
	seen := map[uint64]bool{}
	for i := 0; i < 4; i++ {
		a, ok := u.Alloc()
		if !ok || a%2048 != 0 || seen[a] {
			t.Fatalf("alloc %d: %d %v", i, a, ok)
		}
		seen[a] = true
	}
	if _, ok := u.Alloc(); ok {
		t.Error("alloc from an empty pool")
	}
	u.Free(2048 + 300) // a frame is freed by any address inside it
	if a, _ := u.Alloc(); a != 2048 {
		t.Errorf("freed frame came back as %d", a)
	}
	d := Desc{Addr: 2048 + 256, Len: 100}
	if b := u.Bytes(d); len(b) != 100 || cap(b) != 100 {
		t.Errorf("Bytes len %d cap %d", len(b), cap(b))
	}
	if r := u.Room(d); len(r) != 2048-256 {
		t.Errorf("Room %d, want %d", len(r), 2048-256)
	}
	if u.Bytes(Desc{Addr: 4 * 2048, Len: 1}) != nil || u.Room(Desc{Addr: 4 * 2048}) != nil {
		t.Error("descriptor past the end gave memory")
	}
	defer func() {
		if recover() == nil {
			t.Error("double free did not panic")
		}
	}()
	for i := 0; i < 5; i++ {
		u.Free(0)
	}
}

func TestSPSC(t *testing.T) {
	if _, err := NewSPSC[int](3); err == nil {
		t.Error("accepted size 3")
	}
	r, _ := NewSPSC[int](64)
	const total = 200000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]int, 7)
		next := 0
		for next < total {
			n := 0
			for n < len(buf) && next+n < total {
				buf[n] = next + n
				n++
			}
			next += r.Push(buf[:n])
		}
	}()
	got := make([]int, 5)
	want := 0
	for want < total {
		n := r.Pop(got)
		for _, v := range got[:n] {
			if v != want {
				t.Fatalf("got %d, want %d", v, want)
			}
			want++
		}
	}
	wg.Wait()
	if r.Len() != 0 {
		t.Errorf("ring not empty: %d", r.Len())
	}
}
