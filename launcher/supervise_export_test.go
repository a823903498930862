package launcher

// CancelWhenGone is cancelWhenGone, for the tests of the supervisor's socket.
var CancelWhenGone = cancelWhenGone
