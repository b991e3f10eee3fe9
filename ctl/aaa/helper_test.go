package aaa

import "crypto/md5"

func chapResponse(id byte, secret string, challenge []byte) []byte {
	h := md5.New()
	h.Write([]byte{id})
	h.Write([]byte(secret))
	h.Write(challenge)
	return append([]byte{id}, h.Sum(nil)...)
}
