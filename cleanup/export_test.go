package cleanup

// Command and MatchesCommand expose the orphan pattern test to the external
// tests, which check it against launcher's default patterns.
var (
	Command        = command
	MatchesCommand = matchesCommand
)
