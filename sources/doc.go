// Package sources brings what a recipe's sources name onto the build
// machine, verified, and stages it: after recipes, before validation in
// bakery's flow (recipes → sources → stage → validate → format → image →
// registry → node). Each kind of source (url.go, files.go, oci.go) is one Source
// implementation registered in kinds (source.go); downloads land in a
// content-addressed cache (cache.go) through the Fetcher (fetcher.go),
// which bounds and verifies them.
package sources
