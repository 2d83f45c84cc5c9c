package tasks

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/RichardKnop/logging"
	mlog "github.com/RichardKnop/machinery/v2/log"
	"github.com/sirupsen/logrus"
)

// machinery logs through package-level loggers. Its default prints every
// message payload at DEBUG, which would leak run inputs; we discard DEBUG
// and route the other levels to logrus with component=machinery.
var (
	machineryLogOnce sync.Once
	machineryLogger  atomic.Pointer[logrus.FieldLogger]
)

// installMachineryLogger routes machinery's logs to logger. The loggers are
// process-wide, so the most recent Queue or Worker's logger wins.
func installMachineryLogger(logger logrus.FieldLogger) {
	l := logger.WithField("component", "machinery")
	var fl logrus.FieldLogger = l
	machineryLogger.Store(&fl)
	machineryLogOnce.Do(func() {
		mlog.SetDebug(discardLogger{})
		mlog.SetInfo(levelLogger{logrus.InfoLevel})
		mlog.SetWarning(levelLogger{logrus.WarnLevel})
		mlog.SetError(levelLogger{logrus.ErrorLevel})
		mlog.SetFatal(levelLogger{logrus.FatalLevel})
	})
}

// benignWarnings are messages machinery logs at WARNING on every graceful
// stop; they are not worth an operator's attention.
var benignWarnings = map[string]bool{
	"Stop channel":            true,
	"Stopping retry closure.": true,
}

// levelLogger implements machinery's logging.LoggerInterface at one level.
// Fatal and Panic keep their contracts (exit, panic); machinery's Redis
// broker and backends never call them.
type levelLogger struct{ level logrus.Level }

var _ logging.LoggerInterface = levelLogger{}

func (l levelLogger) log(msg string) {
	p := machineryLogger.Load()
	if p == nil {
		return
	}
	logger := *p
	if benignWarnings[msg] {
		logger.Debug(msg)
		return
	}
	switch l.level {
	case logrus.InfoLevel:
		logger.Info(msg)
	case logrus.WarnLevel:
		logger.Warn(msg)
	case logrus.ErrorLevel:
		logger.Error(msg)
	default:
		logger.WithField("machinery_level", "fatal").Error(msg)
	}
}

func (l levelLogger) Print(v ...interface{})                 { l.log(fmt.Sprint(v...)) }
func (l levelLogger) Printf(format string, v ...interface{}) { l.log(fmt.Sprintf(format, v...)) }
func (l levelLogger) Println(v ...interface{})               { l.log(fmt.Sprint(v...)) }
func (l levelLogger) Fatal(v ...interface{})                 { l.Print(v...); logrus.Exit(1) }
func (l levelLogger) Fatalf(format string, v ...interface{}) { l.Printf(format, v...); logrus.Exit(1) }
func (l levelLogger) Fatalln(v ...interface{})               { l.Println(v...); logrus.Exit(1) }
func (l levelLogger) Panic(v ...interface{})                 { s := fmt.Sprint(v...); l.log(s); panic(s) }
func (l levelLogger) Panicf(format string, v ...interface{}) {
	s := fmt.Sprintf(format, v...)
	l.log(s)
	panic(s)
}
func (l levelLogger) Panicln(v ...interface{}) { s := fmt.Sprint(v...); l.log(s); panic(s) }

// discardLogger drops machinery's DEBUG output, which contains payloads.
type discardLogger struct{}

var _ logging.LoggerInterface = discardLogger{}

func (discardLogger) Print(...interface{})          {}
func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}
func (discardLogger) Fatal(...interface{})          { logrus.Exit(1) }
func (discardLogger) Fatalf(string, ...interface{}) { logrus.Exit(1) }
func (discardLogger) Fatalln(...interface{})        { logrus.Exit(1) }
func (discardLogger) Panic(v ...interface{})        { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(f string, v ...interface{}) {
	panic(fmt.Sprintf(f, v...))
}
func (discardLogger) Panicln(v ...interface{}) { panic(fmt.Sprint(v...)) }
