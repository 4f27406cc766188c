//go:build !linux

package main

import (
	"errors"
	"time"
)

type pacer struct{}

func newPacer() (*pacer, error) { return nil, errors.New("no timerfd on this system") }

func (p *pacer) sleep(time.Duration) error { return errors.New("no timerfd") }

func (p *pacer) close() {}
