package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/server"
	"github.com/sirupsen/logrus"
)

// The API's tokens come from three places, read together and checked as
// one set (docs/api.md, Authentication):
//
//   - ORCHEO_API_TOKEN: one admin token named "default", as before scopes;
//   - ORCHEO_API_TOKENS: comma-separated name:scope:token entries;
//   - ORCHEO_API_TOKENS_FILE: a file of "name scope token" lines, re-read
//     on SIGHUP.
//
// Errors name an entry by its place (entry 2, line 7) and never show what
// it holds: in a mistyped entry any field may be the token.

// apiTokensFromEnv reads ORCHEO_API_TOKENS and ORCHEO_API_TOKENS_FILE into
// c, adding to errs what does not parse. The file is read when the API
// starts (loadAPITokens), not here.
func (c *Config) apiTokensFromEnv(getenv func(string) string, errs *[]string) {
	c.APITokensFile = strings.TrimSpace(getenv("ORCHEO_API_TOKENS_FILE"))
	list, err := parseTokenList(getenv("ORCHEO_API_TOKENS"))
	if err != nil {
		*errs = append(*errs, err.Error())
		return
	}
	c.APITokens = list
}

// hasAPITokens reports whether any token source is set, i.e. whether the
// API authenticates.
func (c Config) hasAPITokens() bool {
	return c.APIToken != "" || len(c.APITokens) > 0 || c.APITokensFile != ""
}

// parseTokenList reads ORCHEO_API_TOKENS: name:scope:token entries
// separated by commas. The token is everything after the second colon.
func parseTokenList(s string) ([]server.APIToken, error) {
	var out []server.APIToken
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		where := fmt.Sprintf("ORCHEO_API_TOKENS entry %d", i+1)
		name, rest, ok1 := strings.Cut(entry, ":")
		scope, value, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return nil, orcheo.Errorf(orcheo.EINVALID, "%s: want name:scope:token", where)
		}
		tok, err := tokenEntry(where, name, scope, value)
		if err != nil {
			return nil, err
		}
		out = append(out, tok)
	}
	return out, nil
}

// parseTokenFile reads a token file: one "name scope token" per line,
// separated by spaces or tabs. Blank lines and lines starting with # are
// skipped; a # elsewhere is part of the line.
func parseTokenFile(r io.Reader, path string) ([]server.APIToken, error) {
	var out []server.APIToken
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("ORCHEO_API_TOKENS_FILE %s line %d", path, n)
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, orcheo.Errorf(orcheo.EINVALID, "%s: want name scope token, got %d fields", where, len(f))
		}
		tok, err := tokenEntry(where, f[0], f[1], f[2])
		if err != nil {
			return nil, err
		}
		out = append(out, tok)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ORCHEO_API_TOKENS_FILE %s: %w", path, err)
	}
	return out, nil
}

// tokenEntry checks one entry of ORCHEO_API_TOKENS or of the file; where
// names it. Only the rules that need the entry's place are here; the set
// (duplicates) is checked by server.Tokens.Set.
func tokenEntry(where, name, scope, value string) (server.APIToken, error) {
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	tok := server.APIToken{Name: name, Scope: server.Scope(strings.TrimSpace(scope)), Value: value}
	switch {
	case !tok.Scope.Valid():
		return tok, orcheo.Errorf(orcheo.EINVALID, "%s: unknown scope: want admin, read, dispatch or metrics", where)
	case len(value) < server.MinTokenLength:
		return tok, orcheo.Errorf(orcheo.EINVALID, "%s: the token is shorter than %d characters (make one with: openssl rand -hex 32)", where, server.MinTokenLength)
	}
	// Names and values are checked by the same rules as the whole set, but
	// reported here, by place.
	if _, err := server.NewTokens([]server.APIToken{tok}); err != nil {
		return tok, orcheo.Errorf(orcheo.EINVALID, "%s: a name is 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit, and a token printable ASCII without spaces", where)
	}
	return tok, nil
}

// loadAPITokens returns every token of cfg: ORCHEO_API_TOKEN, then
// ORCHEO_API_TOKENS, then the file, read now. It does not check the set as
// a whole; server.Tokens.Set does.
func loadAPITokens(cfg Config) ([]server.APIToken, error) {
	var list []server.APIToken
	if cfg.APIToken != "" {
		list = append(list, server.APIToken{Name: server.DefaultTokenName, Scope: server.ScopeAdmin, Value: cfg.APIToken})
	}
	list = append(list, cfg.APITokens...)
	if cfg.APITokensFile == "" {
		return list, nil
	}
	f, err := os.Open(cfg.APITokensFile)
	if err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "ORCHEO_API_TOKENS_FILE: %v", err)
	}
	defer f.Close()
	fromFile, err := parseTokenFile(f, cfg.APITokensFile)
	if err != nil {
		return nil, err
	}
	return append(list, fromFile...), nil
}

// openAPITokens returns the API's tokens, or nil when no source is set
// (authentication off: orcheo dev on loopback). It warns of a short
// ORCHEO_API_TOKEN (still accepted, as before scopes) and of a token file
// other users may read.
func openAPITokens(cfg Config, log logrus.FieldLogger) (*server.Tokens, error) {
	if !cfg.hasAPITokens() {
		return nil, nil
	}
	list, err := loadAPITokens(cfg)
	if err != nil {
		return nil, err
	}
	tokens, err := server.NewTokens(list)
	if err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "API tokens: %s (ORCHEO_API_TOKEN is the admin token named %q)", orcheo.ErrorMessage(err), server.DefaultTokenName)
	}
	if cfg.APIToken != "" && len(cfg.APIToken) < server.MinTokenLength {
		log.Warnf("ORCHEO_API_TOKEN is shorter than %d characters; make one with: openssl rand -hex 32", server.MinTokenLength)
	}
	warnReadableTokenFile(cfg.APITokensFile, log)
	log.WithField("tokens", tokens.Names()).Info("api tokens loaded")
	return tokens, nil
}

// warnReadableTokenFile warns if every user may read the token file.
func warnReadableTokenFile(path string, log logrus.FieldLogger) {
	if path == "" {
		return
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o004 != 0 {
		log.WithField("file", path).Warn("ORCHEO_API_TOKENS_FILE is readable by every user; chmod 640 it")
	}
}

// reloadAPITokens reads every token source again and replaces tokens with
// them all at once. On any error it keeps the tokens in use, logs why and
// returns the error.
func reloadAPITokens(cfg Config, tokens *server.Tokens, log logrus.FieldLogger) error {
	list, err := loadAPITokens(cfg)
	if err == nil {
		err = tokens.Set(list)
	}
	if err != nil {
		log.WithError(err).Error("api tokens not reloaded; the previous tokens stay in use")
		return err
	}
	warnReadableTokenFile(cfg.APITokensFile, log)
	log.WithField("tokens", tokens.Names()).Info("api tokens reloaded")
	return nil
}

// watchTokenReload re-reads the tokens on every SIGHUP until ctx ends; it
// returns once the signal is caught, so a SIGHUP sent afterwards never
// takes its default action (exit). Without a token file there is nothing
// to re-read: the signal is then logged and ignored. The goroutine it
// starts ends with ctx.
func watchTokenReload(ctx context.Context, cfg Config, tokens *server.Tokens, log logrus.FieldLogger) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				if tokens == nil || cfg.APITokensFile == "" {
					log.Warn("SIGHUP: ORCHEO_API_TOKENS_FILE is not set; nothing to re-read")
					continue
				}
				_ = reloadAPITokens(cfg, tokens, log)
			}
		}
	}()
}
