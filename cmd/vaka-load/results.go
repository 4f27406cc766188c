package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// readResults reads result files (JSON, in the order given) into values of
// type T; a file that does not parse is named in the error. The report
// writers check what is in each (a storm's Storm, a kind) themselves.
func readResults[T any](files []string) ([]*T, error) {
	rs := make([]*T, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r := new(T)
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}
