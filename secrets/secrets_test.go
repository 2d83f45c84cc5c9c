package secrets_test

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/orcheo/orcheo/secrets"
)

func mustBox(tb testing.TB, keys ...string) *secrets.Box {
	tb.Helper()
	b, err := secrets.Parse(strings.Join(keys, ","))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustKey(tb testing.TB) string {
	tb.Helper()
	k, err := secrets.NewKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestBox(t *testing.T) {
	t.Parallel()
	key := mustKey(t)
	b := mustBox(t, key)
	const plain = "whsec_c2VjcmV0LXBsYWludGV4dA=="

	t.Run("RoundTrip", func(t *testing.T) {
		sealed, err := b.Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sealed, "v1:"+b.KeyID()+":") || strings.Contains(sealed, plain) || secrets.SealedKeyID(sealed) != b.KeyID() {
			t.Fatalf("sealed %q", sealed)
		}
		got, err := b.Open(sealed)
		if err != nil || got != plain {
			t.Fatalf("open = %q, %v", got, err)
		}
		// A fresh nonce each time.
		again, _ := b.Seal(plain)
		if again == sealed {
			t.Fatal("two seals of one plaintext are equal")
		}
		// Another Box of the same key opens it.
		if got, err := mustBox(t, key).Open(sealed); err != nil || got != plain {
			t.Fatalf("open with the same key = %q, %v", got, err)
		}
		// The empty string too.
		e, _ := b.Seal("")
		if got, err := b.Open(e); err != nil || got != "" {
			t.Fatalf("open empty = %q, %v", got, err)
		}
	})

	t.Run("OtherKey", func(t *testing.T) {
		sealed, _ := b.Seal(plain)
		_, err := mustBox(t, mustKey(t)).Open(sealed)
		if !errors.Is(err, secrets.ErrUnknownKey) || !strings.Contains(err.Error(), b.KeyID()) {
			t.Fatalf("open with another key: %v", err)
		}
		noLeak(t, err, plain, sealed, key)
	})

	t.Run("Tampered", func(t *testing.T) {
		sealed, _ := b.Seal(plain)
		i := strings.LastIndex(sealed, ":") + 1
		raw, _ := base64.StdEncoding.DecodeString(sealed[i:])
		for _, pos := range []int{0, 12, len(raw) - 1} {
			bad := append([]byte(nil), raw...)
			bad[pos] ^= 1
			v := sealed[:i] + base64.StdEncoding.EncodeToString(bad)
			_, err := b.Open(v)
			if !errors.Is(err, secrets.ErrDecrypt) {
				t.Fatalf("flipped byte %d: %v", pos, err)
			}
			noLeak(t, err, plain, v, key)
		}
		// A forged key id: the header is authenticated too.
		other := mustBox(t, mustKey(t), key)
		forged := "v1:" + other.KeyID() + sealed[len("v1:")+8:]
		if _, err := other.Open(forged); !errors.Is(err, secrets.ErrDecrypt) {
			t.Fatalf("forged key id: %v", err)
		}
	})

	t.Run("Malformed", func(t *testing.T) {
		for _, v := range []string{"", plain, "v1:", "v2:" + b.KeyID() + ":AAAA", "v1:" + b.KeyID() + ":!!!", "v1:" + b.KeyID() + ":AAAA", "v1:short:AAAA"} {
			_, err := b.Open(v)
			if !errors.Is(err, secrets.ErrMalformed) {
				t.Fatalf("open %q: %v", v, err)
			}
			noLeak(t, err, plain, "", key)
		}
	})

	t.Run("SeveralKeys", func(t *testing.T) {
		newKey := mustKey(t)
		rotated := mustBox(t, newKey, key)
		old, _ := b.Seal(plain)
		if got, err := rotated.Open(old); err != nil || got != plain {
			t.Fatalf("old value under the rotated box: %q %v", got, err)
		}
		sealed, _ := rotated.Seal(plain)
		if secrets.SealedKeyID(sealed) == b.KeyID() {
			t.Fatal("the rotated box seals with the old key")
		}
		if _, err := b.Open(sealed); !errors.Is(err, secrets.ErrUnknownKey) {
			t.Fatalf("new value under the old box: %v", err)
		}
	})
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	raw := make([]byte, secrets.KeySize)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	for _, tc := range []struct{ name, in string }{
		{"Base64", base64.StdEncoding.EncodeToString(raw)},
		{"Base64NoPadding", base64.RawStdEncoding.EncodeToString(raw)},
		{"Base64URL", base64.URLEncoding.EncodeToString(raw)},
		{"Hex", hex.EncodeToString(raw)},
		{"FileWithNewline", base64.StdEncoding.EncodeToString(raw) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := secrets.ParseKey(tc.in)
			if err != nil || string(k) != string(raw) {
				t.Fatalf("ParseKey = %x, %v", k, err)
			}
		})
	}
	short := base64.StdEncoding.EncodeToString(raw[:16])
	for _, in := range []string{"", "not a key at all, but a passphrase!", short, hex.EncodeToString(raw[:16])} {
		_, err := secrets.ParseKey(in)
		if err == nil {
			t.Fatalf("ParseKey(%q) accepted", in)
		}
		if in != "" && strings.Contains(err.Error(), in) {
			t.Fatalf("error %q holds the key", err)
		}
	}
	if _, err := secrets.Parse(base64.StdEncoding.EncodeToString(raw) + "," + short); err == nil || !strings.Contains(err.Error(), "key 2") || strings.Contains(err.Error(), short) {
		t.Fatalf("Parse with a bad second key: %v", err)
	}
	k1, k2 := mustKey(t), mustKey(t)
	if k1 == k2 || len(k1) != 44 {
		t.Fatalf("NewKey: %q %q", k1, k2)
	}
}

func noLeak(tb testing.TB, err error, values ...string) {
	tb.Helper()
	for _, v := range values {
		if v != "" && strings.Contains(err.Error(), v) {
			tb.Fatalf("error %q holds %q", err, v)
		}
	}
}
