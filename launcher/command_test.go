package launcher

import "testing"

func TestIsSimpleCommand(t *testing.T) {
	for cmd, want := range map[string]bool{
		"sleep 1000":                         true,
		"python3 -m http.server 8000":        true,
		"./bin/server --port=3000 -v":        true,
		`node 'my app.js' "--name=a b"`:      true,
		"  rails server -b 0.0.0.0  ":        true,
		"npm run dev":                        true,
		"sleep $PORT":                        true, // a variable: expanded, then exec'd
		"rails s -p ${PORT} -b 0.0.0.0":      true,
		`echo "$HOME/x" "${A}b"`:             true,
		"$CMD run":                           false, // the program itself from a variable
		`"$CMD" run`:                         false,
		"echo $(date)":                       false, // command substitution
		"echo $((1+2))":                      false,
		"echo ${A:-b}":                       false, // a parameter expansion form
		"echo $1 $@":                         false,
		`echo "$(date)"`:                     false,
		"a && b":                             false,
		"a; b":                               false,
		"a | b":                              false,
		"a > log":                            false,
		"a &":                                false,
		"ls *.go":                            false,
		"echo ~":                             false,
		"cd web":                             false, // a builtin: exec cd fails
		"exec sleep 1":                       false, // already exec'd
		"PORT=1 node app.js":                 false, // an assignment
		"if true":                            false,
		"echo `date`":                        false,
		"echo 'unterminated":                 false,
		"a # comment":                        false,
		"line1\nline2":                       false,
		`echo "a\"b"`:                        false,
		"":                                   false,
		"bundle exec puma -C config/puma.rb": true,
	} {
		if got := isSimpleCommand(cmd); got != want {
			t.Errorf("isSimpleCommand(%q) = %v, want %v", cmd, got, want)
		}
	}
}
