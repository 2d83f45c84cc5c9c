package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// sender POSTs webhooks to the API at 127.0.0.1.
type sender struct {
	client *http.Client
	url    string
}

func newSender(apiURL, ref string) *sender {
	t := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	return &sender{client: &http.Client{Transport: t, Timeout: time.Minute},
		url: apiURL + "/api/workflows/" + ref + "/triggers/webhook"}
}

// send posts one webhook and returns its latency and status (0 on a
// transport error).
func (s *sender) send(ctx context.Context, i int64) (time.Duration, int) {
	body := fmt.Appendf(nil, `{"bench":%d}`, i)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return time.Since(start), 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), resp.StatusCode
}

// sent is what a load loop observed.
type sent struct {
	accepted  []time.Duration // latencies of 202 answers
	refused   map[int]int     // other statuses (0: transport error) → count
	started   time.Time
	elapsed   time.Duration // first send to last answer
	behind    int           // open loop: sends that left later than 10 ms after their slot
	offeredAt float64       // open loop: the rate offered
}

func (s *sent) add(o sent) {
	s.accepted = append(s.accepted, o.accepted...)
	for k, v := range o.refused {
		s.refused[k] += v
	}
}

// closedLoop sends n webhooks (n < 0: until ctx ends) from c senders, each
// sending its next as soon as the last is answered.
func closedLoop(ctx context.Context, s *sender, n int64, c int) sent {
	out := sent{refused: map[int]int{}, started: time.Now()}
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			mine := sent{refused: map[int]int{}}
			for ctx.Err() == nil {
				i := next.Add(1)
				if n >= 0 && i > n {
					break
				}
				d, code := s.send(ctx, i)
				if code == http.StatusAccepted {
					mine.accepted = append(mine.accepted, d)
				} else if ctx.Err() == nil {
					mine.refused[code]++
				}
			}
			mu.Lock()
			out.add(mine)
			mu.Unlock()
		})
	}
	wg.Wait()
	out.elapsed = time.Since(out.started)
	return out
}

// openLoop offers rate webhooks a second for d, each on its own
// goroutine at its slot whether or not earlier ones were answered.
func openLoop(ctx context.Context, s *sender, rate int, d time.Duration) sent {
	out := sent{refused: map[int]int{}, started: time.Now(), offeredAt: float64(rate)}
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range total {
		slot := out.started.Add(time.Duration(i) * interval)
		if wait := time.Until(slot); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		} else if -wait > 10*time.Millisecond {
			out.behind++
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			d, code := s.send(ctx, int64(i))
			mu.Lock()
			defer mu.Unlock()
			if code == http.StatusAccepted {
				out.accepted = append(out.accepted, d)
			} else {
				out.refused[code]++
			}
		})
	}
	wg.Wait()
	out.elapsed = time.Since(out.started)
	return out
}

// quantiles are a latency distribution in milliseconds.
type quantiles struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// quantilesOf returns nearest-rank quantiles of ds.
func quantilesOf(ds []time.Duration) quantiles {
	if len(ds) == 0 {
		return quantiles{}
	}
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	return quantilesMS(ms)
}

func quantilesMS(ms []float64) quantiles {
	if len(ms) == 0 {
		return quantiles{}
	}
	sort.Float64s(ms)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ms)))) - 1
		return ms[max(0, min(i, len(ms)-1))]
	}
	return quantiles{P50: at(0.50), P99: at(0.99), Max: ms[len(ms)-1]}
}
