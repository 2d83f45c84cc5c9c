// Package secrets seals webhook secrets for storage: AES-256-GCM under the
// key of ORCHEO_SECRETS_KEY.
//
// A key is 32 random bytes written as standard base64 (44 characters:
// `openssl rand -base64 32`, or NewKey); 64 hex digits (`openssl rand -hex
// 32`) are read too. A sealed value is
//
//	v1:<key id>:<base64(nonce | ciphertext | tag)>
//
// with a random 12-byte nonce per seal, and "v1:<key id>" as additional
// data, so the header cannot be changed either. The key id is the first 8
// hex digits of SHA-256(key): it names the key a value needs without
// revealing it, so a Box holding several keys (the new one first, the old
// ones after) opens values of each while the key itself is rotated.
//
// Errors never hold a key, a plaintext or a sealed value.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/orcheo/orcheo"
)

// KeySize is the size of a key in bytes (AES-256).
const KeySize = 32

// version prefixes every sealed value.
const version = "v1"

// Errors of Open, to test with errors.Is.
var (
	// ErrMalformed: the value is not something Seal made.
	ErrMalformed = errors.New("sealed secret is malformed (not v1:<key id>:<base64>)")
	// ErrUnknownKey: the value was sealed with a key the Box does not hold.
	ErrUnknownKey = errors.New("sealed secret was sealed with another key")
	// ErrDecrypt: the value names one of the Box's keys but does not open
	// with it: it was changed after sealing.
	ErrDecrypt = errors.New("sealed secret does not open: it was altered or its key id is forged")
)

// Box seals with its first key and opens with any of its keys. It is safe
// for concurrent use.
type Box struct {
	keys []boxKey
}

type boxKey struct {
	id   string
	aead cipher.AEAD
}

var _ orcheo.SecretBox = (*Box)(nil)

// New returns a Box that seals with keys[0] and opens with every key.
// Each key must be KeySize bytes.
func New(keys ...[]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("secrets: no key")
	}
	b := &Box{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("secrets: key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d: %w", i+1, err)
		}
		b.keys = append(b.keys, boxKey{id: KeyID(k), aead: aead})
	}
	return b, nil
}

// Parse returns the Box of a setting such as ORCHEO_SECRETS_KEY: one key,
// or several separated by commas, the one to seal with first. Errors name
// the position of a bad key, never its text.
func Parse(s string) (*Box, error) {
	var keys [][]byte
	for i, part := range strings.Split(s, ",") {
		k, err := ParseKey(part)
		if err != nil {
			if strings.Contains(s, ",") {
				return nil, fmt.Errorf("key %d: %w", i+1, err)
			}
			return nil, err
		}
		keys = append(keys, k)
	}
	return New(keys...)
}

// ParseKey decodes one key: 32 bytes as standard base64 (padding
// optional; URL-safe letters accepted) or as 64 hex digits. Surrounding
// blanks, such as a key file's newline, are ignored.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	std := strings.TrimRight(strings.NewReplacer("-", "+", "_", "/").Replace(s), "=")
	k, err := base64.RawStdEncoding.DecodeString(std)
	if err != nil {
		return nil, fmt.Errorf("want %d random bytes as base64 (%d characters, e.g. from `openssl rand -base64 32`), got %d characters that are not base64", KeySize, base64.StdEncoding.EncodedLen(KeySize), len(s))
	}
	if len(k) != KeySize {
		return nil, fmt.Errorf("want %d random bytes as base64 (%d characters, e.g. from `openssl rand -base64 32`), got %d bytes", KeySize, base64.StdEncoding.EncodedLen(KeySize), len(k))
	}
	return k, nil
}

// NewKey returns a new random key in the format ParseKey reads (base64).
func NewKey() (string, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("secrets: generate a key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// KeyID is the id a key's sealed values carry: the first 8 hex digits of
// its SHA-256.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// KeyID returns the id of the key b seals with.
func (b *Box) KeyID() string { return b.keys[0].id }

// Seal encrypts plaintext with b's first key under a fresh random nonce.
func (b *Box) Seal(plaintext string) (string, error) {
	k := b.keys[0]
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	header := version + ":" + k.id
	out := k.aead.Seal(nonce, nonce, []byte(plaintext), []byte(header))
	return header + ":" + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value Seal made with any of b's keys. It returns
// ErrMalformed, ErrUnknownKey (wrapped with the ids involved) or ErrDecrypt.
func (b *Box) Open(sealed string) (string, error) {
	v, rest, ok := strings.Cut(sealed, ":")
	if !ok || v != version {
		return "", ErrMalformed
	}
	id, data, ok := strings.Cut(rest, ":")
	if !ok || len(id) != 8 {
		return "", ErrMalformed
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return "", ErrMalformed
	}
	for _, k := range b.keys {
		if k.id != id {
			continue
		}
		if len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
			return "", ErrMalformed
		}
		n := k.aead.NonceSize()
		plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(version+":"+id))
		if err != nil {
			return "", ErrDecrypt
		}
		return string(plain), nil
	}
	return "", fmt.Errorf("%w (key id %s; ORCHEO_SECRETS_KEY holds %s)", ErrUnknownKey, hexOnly(id), strings.Join(b.ids(), ", "))
}

// SealedKeyID returns the key id a sealed value names, or "" if it is
// malformed.
func SealedKeyID(sealed string) string {
	v, rest, ok := strings.Cut(sealed, ":")
	if !ok || v != version {
		return ""
	}
	id, _, ok := strings.Cut(rest, ":")
	if !ok || len(id) != 8 || hexOnly(id) != id {
		return ""
	}
	return id
}

func (b *Box) ids() []string {
	ids := make([]string, len(b.keys))
	for i, k := range b.keys {
		ids[i] = k.id
	}
	return ids
}

// hexOnly returns id if it is hex digits, else "?": an id read from a
// stored value goes into an error message only if it is what Seal writes.
func hexOnly(id string) string {
	if _, err := hex.DecodeString(id); err != nil {
		return "?"
	}
	return id
}
