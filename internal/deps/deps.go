// Package deps pins the project's dependencies in go.mod while the packages
// that use them are written. Remove it once every dependency is imported.
package deps

import (
	_ "github.com/RichardKnop/machinery/v2"
	_ "github.com/RichardKnop/machinery/v2/backends/null"
	_ "github.com/RichardKnop/machinery/v2/backends/redis"
	_ "github.com/RichardKnop/machinery/v2/brokers/redis"
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/expr-lang/expr"
	_ "github.com/gorilla/mux"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/robfig/cron/v3"
	_ "github.com/sirupsen/logrus"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
