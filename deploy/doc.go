// Package deploy holds the deployment files, not code: the systemd unit
// (gotorrentserver.service, with its sysusers.d entry), the Dockerfile and
// their instructions (README.md). Its tests check each file the way it is
// used: systemd-analyze verifies the unit, the unit's and the image's
// command lines run the real daemon, make install stages a tree, and with a
// docker engine the image is built and run.
package deploy
