// Package packaging holds the nfpm configs and maintainer scripts of the
// Debian packages vaka, vaka-hub and vaka-gateway (scripts/package.sh,
// make package), and the test that installs, upgrades and purges them.
// It has no Go API.
package packaging
