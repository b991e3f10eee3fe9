// Command pcap2corpus turns an Ethernet pcap (tcpdump -w) into go-fuzz seed
// corpus files for FuzzParse: one file per distinct frame, named
// <prefix>-<first 8 hex digits of its SHA-256>. Used by capture.sh.
//
//	go run ./dp/header/testdata/pcap2corpus -prefix icmp4 -out dir file.pcap
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
)

func main() {
	prefix := flag.String("prefix", "capture", "file name prefix")
	out := flag.String("out", "fuzz/FuzzParse", "output directory")
	max := flag.Int("max", 20, "most frames to write")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: pcap2corpus [-prefix p] [-out dir] file.pcap")
	}
	frames, err := readPcap(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	n := 0
	for _, f := range frames {
		if n == *max {
			break
		}
		sum := sha256.Sum256(f)
		name := filepath.Join(*out, fmt.Sprintf("%s-%x", *prefix, sum[:4]))
		if _, err := os.Stat(name); err == nil {
			continue
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", f)
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Printf("%s: %d frames, %d files\n", flag.Arg(0), len(frames), n)
}

// readPcap reads a classic pcap file with link type Ethernet.
func readPcap(path string) ([][]byte, error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var gh [24]byte
	if _, err := io.ReadFull(r, gh[:]); err != nil {
		return nil, fmt.Errorf("read pcap header: %w", err)
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(gh[:]) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, errors.New("not a pcap file")
	}
	if lt := bo.Uint32(gh[20:]); lt != 1 {
		return nil, fmt.Errorf("link type %d, want 1 (Ethernet)", lt)
	}
	var frames [][]byte
	for {
		var rh [16]byte
		if _, err := io.ReadFull(r, rh[:]); err == io.EOF {
			return frames, nil
		} else if err != nil {
			return nil, fmt.Errorf("read record header: %w", err)
		}
		n := bo.Uint32(rh[8:])
		if n > 1<<18 {
			return nil, fmt.Errorf("record of %d bytes", n)
		}
		f := make([]byte, n)
		if _, err := io.ReadFull(r, f); err != nil {
			return nil, fmt.Errorf("read record: %w", err)
		}
		frames = append(frames, f)
	}
}
