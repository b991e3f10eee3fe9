package gwsync

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"samepath/nat"
)

// The stream, after the handshake line ("SPSYNC1 <name> <token>\n",
// answered "OK\n"), is a sequence of frames:
//
//	0       1       2       4               8              16
//	+-------+-------+-------+---------------+---------------+
//	| type  | flags | count | 0             | sent (unix ns) |
//	+-------+-------+-------+---------------+---------------+
//	| count records of recSize bytes                         |
//
// Types: frameChanges (records), frameDumpEnd (the sender's full table
// went before it), frameHeartbeat (no records; every batch interval
// when there is nothing to send). Flags: flagReady, the sender holds
// its peers' state (it is ready to be marked up).
//
// A record:
//
//	op, proto, state, 0 | sport | dport | gwport | server port
//	src (16) | dst (16) | gw addr (16) | server (16) | tag (2 x 8)
const (
	hdrSize = 16
	recSize = 12 + 4*16 + 16
	// maxCount bounds a frame's records (a frame is at most 6.3 MB).
	maxCount = 1<<16 - 1

	frameChanges   = 1
	frameDumpEnd   = 2
	frameHeartbeat = 3

	flagReady = 1
)

const proto = "SPSYNC1"

type header struct {
	typ, flags uint8
	count      int
	sent       int64
}

func putHeader(b []byte, h header) {
	b[0], b[1] = h.typ, h.flags
	binary.BigEndian.PutUint16(b[2:], uint16(h.count))
	binary.BigEndian.PutUint32(b[4:], 0)
	binary.BigEndian.PutUint64(b[8:], uint64(h.sent))
}

func putRecord(b []byte, c *nat.Change) {
	bd := &c.B
	b[0], b[1], b[2], b[3] = byte(c.Op), bd.Flow.Proto, byte(bd.State), 0
	binary.BigEndian.PutUint16(b[4:], bd.Flow.SPort)
	binary.BigEndian.PutUint16(b[6:], bd.Flow.DPort)
	binary.BigEndian.PutUint16(b[8:], bd.GwPort)
	binary.BigEndian.PutUint16(b[10:], bd.SPort)
	copy(b[12:], bd.Flow.Src[:])
	copy(b[28:], bd.Flow.Dst[:])
	copy(b[44:], bd.GwAddr[:])
	copy(b[60:], bd.Server[:])
	binary.BigEndian.PutUint64(b[76:], c.Tag[0])
	binary.BigEndian.PutUint64(b[84:], c.Tag[1])
}

// errFrame says a frame is malformed.
var errFrame = errors.New("sync frame")

func getRecord(b []byte, c *nat.Change) error {
	op := nat.Op(b[0])
	if op < nat.OpCreate || op > nat.OpEnd || b[3] != 0 || b[2] > byte(nat.TCPClosed) {
		return fmt.Errorf("%w: record op %d state %d", errFrame, b[0], b[2])
	}
	*c = nat.Change{Op: op}
	bd := &c.B
	bd.Flow.Proto, bd.State = b[1], nat.TCPState(b[2])
	bd.Flow.SPort = binary.BigEndian.Uint16(b[4:])
	bd.Flow.DPort = binary.BigEndian.Uint16(b[6:])
	bd.GwPort = binary.BigEndian.Uint16(b[8:])
	bd.SPort = binary.BigEndian.Uint16(b[10:])
	copy(bd.Flow.Src[:], b[12:28])
	copy(bd.Flow.Dst[:], b[28:44])
	copy(bd.GwAddr[:], b[44:60])
	copy(bd.Server[:], b[60:76])
	c.Tag = [2]uint64{binary.BigEndian.Uint64(b[76:]), binary.BigEndian.Uint64(b[84:])}
	return nil
}

// writeFrame writes one frame of cs (at most maxCount) to w.
func writeFrame(w *bufio.Writer, h header, cs []nat.Change) error {
	h.count = len(cs)
	var hb [hdrSize]byte
	putHeader(hb[:], h)
	if _, err := w.Write(hb[:]); err != nil {
		return err
	}
	var rb [recSize]byte
	for i := range cs {
		putRecord(rb[:], &cs[i])
		if _, err := w.Write(rb[:]); err != nil {
			return err
		}
	}
	return nil
}

// readFrame reads one frame; its records go into a new slice (the
// receiver hands it to the worker).
func readFrame(r *bufio.Reader) (header, []nat.Change, error) {
	var hb [hdrSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return header{}, nil, err
	}
	h := header{typ: hb[0], flags: hb[1], count: int(binary.BigEndian.Uint16(hb[2:])),
		sent: int64(binary.BigEndian.Uint64(hb[8:]))}
	if h.typ < frameChanges || h.typ > frameHeartbeat || binary.BigEndian.Uint32(hb[4:]) != 0 ||
		(h.typ != frameChanges && h.count != 0) {
		return h, nil, fmt.Errorf("%w: type %d count %d", errFrame, h.typ, h.count)
	}
	if h.count == 0 {
		return h, nil, nil
	}
	cs := make([]nat.Change, h.count)
	var rb [recSize]byte
	for i := range cs {
		if _, err := io.ReadFull(r, rb[:]); err != nil {
			return h, nil, err
		}
		if err := getRecord(rb[:], &cs[i]); err != nil {
			return h, nil, err
		}
	}
	return h, cs, nil
}
