package server

// UnauthenticatedInFlight returns how many unauthenticated requests hold a
// slot of the concurrency cap, so tests can wait for them.
func (s *Server) UnauthenticatedInFlight() int {
	s.public.mu.Lock()
	defer s.public.mu.Unlock()
	return s.public.total
}
