module villageledger/gocheck

go 1.19

require golang.org/x/mod v0.7.0

// Debian package golang-golang-x-mod-dev; the build is offline (GOPROXY=off), see tests/test_interop_go.py.
replace golang.org/x/mod => /usr/share/gocode/src/golang.org/x/mod
