package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// WebhookSender posts alarms to webhook receivers with retries.
type WebhookSender struct {
	Client *http.Client
	// Backoff is the wait before retry n (1-based); nil doubles from 1 s.
	Backoff func(n int) time.Duration
}

// NewWebhookSender returns a sender using c (nil: a client without a
// global timeout; each attempt has its own).
func NewWebhookSender(c *http.Client) *WebhookSender {
	if c == nil {
		c = &http.Client{}
	}
	return &WebhookSender{Client: c}
}

// WebhookBody is what a webhook receives.
type WebhookBody struct {
	Version  int     `json:"version"`
	Receiver string  `json:"receiver"`
	Message  Message `json:"message"`
}

// Send posts m to r, retrying what Notify says is worth retrying.
func (w *WebhookSender) Send(ctx context.Context, r *Receiver, m Message) error {
	retries := r.Webhook.MaxRetries
	if retries == 0 {
		retries = 3
	}
	var err error
	for n := 0; n <= retries; n++ {
		if n > 0 {
			wait := time.Duration(1<<min(n-1, 5)) * time.Second
			if w.Backoff != nil {
				wait = w.Backoff(n)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		var retry bool
		retry, err = w.Notify(ctx, r, m)
		if err == nil || !retry {
			return err
		}
	}
	return err
}

// Notify makes one attempt. Like Alertmanager's notifiers it says whether
// a failure is worth retrying: network errors, 5xx and 429 are; other 4xx
// are not (the request itself is wrong).
func (w *WebhookSender) Notify(ctx context.Context, r *Receiver, m Message) (retry bool, err error) {
	if r.Webhook == nil {
		return false, errors.New("notify: receiver has no webhook")
	}
	timeout := r.Webhook.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, _ := json.Marshal(WebhookBody{Version: 1, Receiver: r.Name, Message: m})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("notify: webhook %s: %w", r.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vaka-notify/1")
	resp, err := w.Client.Do(req)
	if err != nil {
		return true, fmt.Errorf("notify: webhook %s: %w", r.Name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("notify: webhook %s: %s", r.Name, resp.Status)
	default:
		return false, fmt.Errorf("notify: webhook %s: %s", r.Name, resp.Status)
	}
}
