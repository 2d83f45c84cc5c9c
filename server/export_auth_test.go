package server

import (
	"net/http"

	"github.com/gorilla/mux"
)

// RouteMethods walks the router and returns each route's path template
// with its methods; a route without a method matcher (it accepts any
// method) is listed with "*". For the route × scope test.
func (s *Server) RouteMethods() (map[string][]string, error) {
	out := map[string][]string{}
	err := s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			methods = []string{"*"}
		}
		out[tpl] = append(out[tpl], methods...)
		return nil
	})
	return out, err
}

// MatchedTemplate returns the path template of the route r reaches, or ""
// if it reaches none (404 or 405).
func (s *Server) MatchedTemplate(r *http.Request) string {
	var m mux.RouteMatch
	if !s.router.Match(r, &m) || m.MatchErr != nil || m.Route == nil {
		return ""
	}
	tpl, _ := m.Route.GetPathTemplate()
	return tpl
}
