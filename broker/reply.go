package broker

import (
	"encoding/json"

	"github.com/vaka-care/vaka/event"
)

func jsonReply(r event.Reply) ([]byte, error) { return json.Marshal(r) }
