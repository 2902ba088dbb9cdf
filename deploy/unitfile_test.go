package deploy_test

// A reader of systemd unit files, as much of systemd.syntax(7) and
// systemd.service(5) as the tests need to run the unit's command line the
// way systemd would: sections, repeated keys, continuation lines, quoting,
// ExecStart prefixes and ${VAR} expansion from Environment=.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type unitFile struct {
	path string
	// sections[name][key] holds every value in file order.
	sections map[string]map[string][]string
}

func readUnit(path string) (*unitFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	u := &unitFile{path: path, sections: map[string]map[string][]string{}}
	var section string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u.sections[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return nil, fmt.Errorf("%s:%d: not key=value in a section: %q", path, i+1, line)
			}
			k = strings.TrimSpace(k)
			u.sections[section][k] = append(u.sections[section][k], strings.TrimSpace(v))
		}
	}
	return u, nil
}

// all returns every value of key in section, in order.
func (u *unitFile) all(section, key string) []string { return u.sections[section][key] }

// one returns key's last value (systemd's rule for single-valued keys).
func (u *unitFile) one(section, key string) string {
	v := u.all(section, key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// environment is the service's Environment= assignments, in order.
func (u *unitFile) environment() ([]string, error) {
	var env []string
	for _, line := range u.all("Service", "Environment") {
		words, err := splitWords(line)
		if err != nil {
			return nil, fmt.Errorf("Environment=%s: %w", line, err)
		}
		for _, w := range words {
			if !strings.Contains(w, "=") {
				return nil, fmt.Errorf("Environment=%s: %q is no assignment", line, w)
			}
			env = append(env, w)
		}
	}
	return env, nil
}

// execStart is the argv systemd would run: prefixes dropped, ${VAR} and
// $VAR expanded from env. Specifiers (%S, %h...) are refused rather than
// misread: the tests would run something other than what systemd runs.
func (u *unitFile) execStart(env []string) ([]string, error) {
	lines := u.all("Service", "ExecStart")
	if len(lines) != 1 {
		return nil, fmt.Errorf("want one ExecStart=, have %d", len(lines))
	}
	line := lines[0]
	if strings.Contains(line, "%") {
		return nil, fmt.Errorf("ExecStart=%s: specifiers are not expanded by this test's reader", line)
	}
	words, err := splitWords(line)
	if err != nil || len(words) == 0 {
		return nil, fmt.Errorf("ExecStart=%s: %v", line, err)
	}
	words[0] = strings.TrimLeft(words[0], "@-:+!")
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for i, w := range words {
		words[i] = os.Expand(w, func(k string) string { return vars[k] })
	}
	return words, nil
}

// splitWords splits at whitespace, honouring double and single quotes and
// backslash escapes, as systemd does for command lines and Environment=.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\\' && quote != '\'':
			if i+1 == len(rs) {
				return nil, fmt.Errorf("trailing backslash in %q", s)
			}
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// systemdSeconds reads a time span as systemd.time(7) writes it: a bare
// number is seconds; "1min 30s" sums its parts.
func systemdSeconds(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	units := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "sec": time.Second,
		"m": time.Minute, "min": time.Minute, "h": time.Hour, "hr": time.Hour}
	var total time.Duration
	for _, part := range strings.Fields(s) {
		j := strings.IndexFunc(part, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if j <= 0 {
			return 0, fmt.Errorf("time span %q", s)
		}
		n, err := strconv.ParseFloat(part[:j], 64)
		unit, ok := units[part[j:]]
		if err != nil || !ok {
			return 0, fmt.Errorf("time span %q", s)
		}
		total += time.Duration(n * float64(unit))
	}
	return total, nil
}

// signalByName maps the KillSignal= names a daemon could be given.
func signalByName(name string) (syscall.Signal, error) {
	sigs := map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT,
		"SIGHUP": syscall.SIGHUP, "SIGQUIT": syscall.SIGQUIT, "SIGKILL": syscall.SIGKILL}
	if name == "" {
		return syscall.SIGTERM, nil // systemd's default
	}
	s, ok := sigs[strings.ToUpper(name)]
	if !ok {
		return 0, fmt.Errorf("signal %q", name)
	}
	return s, nil
}
