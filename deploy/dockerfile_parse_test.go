package deploy_test

// A reader of Dockerfiles, enough to check deploy/Dockerfile and replay its
// commands without a docker engine: stages, instructions with their
// continuation lines, exec (JSON) and shell forms.

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY...
	args string
}

type stage struct {
	from, name string
	body       []instruction
}

func readDockerfile(path string) ([]stage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var stages []stage
	var logical string
	flush := func() error {
		line := strings.TrimSpace(logical)
		logical = ""
		if line == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			return nil
		}
		if len(stages) == 0 {
			return fmt.Errorf("%s: %s before FROM", path, in.cmd)
		}
		st := &stages[len(stages)-1]
		st.body = append(st.body, in)
		return nil
	}
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") {
			continue // comments, also between continuation lines
		}
		if strings.HasSuffix(line, `\`) {
			logical += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		logical += line
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return stages, flush()
}

// all returns the arguments of every cmd instruction of the stage.
func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

func (s stage) last(cmd string) string {
	v := s.all(cmd)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// execForm reads a JSON array argument (ENTRYPOINT ["a", "b"]).
func execForm(args string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		return nil, fmt.Errorf("not exec form (a JSON array): %s", args)
	}
	return v, nil
}

// volumes reads VOLUME in either form.
func volumes(args string) []string {
	if v, err := execForm(args); err == nil {
		return v
	}
	return strings.Fields(args)
}

// healthcheckCmd returns the shell command of HEALTHCHECK [OPTIONS] CMD cmd.
func healthcheckCmd(args string) (string, error) {
	f := strings.Fields(args)
	for i, w := range f {
		if strings.HasPrefix(w, "--") {
			continue
		}
		if !strings.EqualFold(w, "CMD") || i+1 == len(f) {
			return "", fmt.Errorf("HEALTHCHECK %s: want [OPTIONS] CMD command", args)
		}
		rest := strings.TrimSpace(args[strings.Index(args, w)+len(w):])
		if v, err := execForm(rest); err == nil {
			if len(v) > 0 && v[0] == "CMD-SHELL" {
				return strings.Join(v[1:], " "), nil
			}
			return "", fmt.Errorf("HEALTHCHECK exec form is not replayed here: %s", rest)
		}
		return rest, nil
	}
	return "", fmt.Errorf("HEALTHCHECK %s: no CMD", args)
}
