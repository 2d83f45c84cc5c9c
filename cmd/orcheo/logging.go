package main

import (
	"io"
	"os"

	"github.com/sirupsen/logrus"
)

// newLogger builds the process logger: JSON in production (not a TTY), text
// on a terminal, unless ORCHEO_LOG_FORMAT says otherwise.
func newLogger(cfg Config, w io.Writer) (*logrus.Logger, error) {
	l := logrus.New()
	l.SetOutput(w)
	level, err := logrus.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	l.SetLevel(level)
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return l, nil
}
