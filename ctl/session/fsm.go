package session

// State is a session state of FIG. 11.
type State string

const (
	None    State = "None"
	Act     State = "Act"
	Dormant State = "Dormant"
	Close   State = "Close"
)

// Event drives the FIG. 11 state machine.
type Event int

const (
	EvStart          Event = iota // Accounting Start (session information entry / status change start)
	EvInterim                     // Accounting Interim-Update (status change interim)
	EvStopIdle                    // Accounting Stop, Acct-Terminate-Cause Idle-Timeout (status change stop)
	EvLogout                      // Accounting Stop with any other cause, or an administrative close (status change close)
	EvInterimTimeout              // interim monitor timer expired
	EvSessionTimeout              // session timer (in Dormant) expired
	EvLogWritten                  // the session log record is durable
)

var eventNames = [...]string{"start", "interim", "stop-idle", "logout", "interim-timeout", "session-timeout", "log-written"}

func (e Event) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return "invalid"
}

type edge struct {
	from State
	ev   Event
}

// transitions is FIG. 11, edge by edge (the numbers are the figure's).
var transitions = map[edge]State{
	{None, EvStart}:             Act,     // 1: session information entry
	{Act, EvStopIdle}:           Dormant, // 2: dormant timer expired at the NAS, status change (stop)
	{Act, EvLogout}:             Close,   // 3: user log-out, status change (close)
	{Close, EvLogWritten}:       None,    // 4: session log output, record deleted
	{Dormant, EvStart}:          Act,     // 5: user packet again, status change (start)
	{Act, EvInterim}:            Act,     // 6: status change (interim)
	{Dormant, EvSessionTimeout}: Close,   // 7: session timer expired
	{Act, EvInterimTimeout}:     Close,   // 8: interim monitor timer expired
	{Dormant, EvLogout}:         Close,   // log-out while dormant (status change close)
}

// Next returns the state after ev in s, and false when FIG. 11 has no such
// edge (the event is then counted and ignored).
func Next(s State, ev Event) (State, bool) {
	n, ok := transitions[edge{s, ev}]
	return n, ok
}
