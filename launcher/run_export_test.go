package launcher

// MarkOwned is markOwned, for the external tests.
var MarkOwned = markOwned
