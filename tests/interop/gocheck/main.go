// Command gocheck verifies villageledger's signed checkpoints and Merkle proofs with Go's
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, an implementation we did not write.
//
// Usage: gocheck CASE.json, or gocheck tiles PREFIX VKEY (see tiles.go)
//
// CASE.json:
//
//	{"vkey": "name+hash+keydata",
//	 "checkpoint": "<signed note>",
//	 "origin": "expected origin (optional)",
//	 "leaves": ["<base64 leaf data>", ...],
//	 "leaf_hashes": ["<base64 hash_leaf(data)>", ...]   (optional),
//	 "inclusion": [{"index": 0, "size": 1, "proof": ["<b64>", ...], "root": "<b64>"}, ...],
//	 "consistency": [{"size1": 1, "size2": 2, "proof": [...], "root1": "<b64>", "root2": "<b64>"}, ...]}
//
// Plan:
//  1. note.NewVerifier(vkey) and note.Open(checkpoint): the note verifies under the key.
//  2. Parse the checkpoint text (c2sp.org/tlog-checkpoint): origin, canonical decimal size, root.
//  3. tlog.RecordHash of each leaf equals the given leaf hash; Go's own tree hash of the leaves at the
//     checkpoint size equals the checkpoint root.
//  4. Each inclusion proof: the root equals Go's tree hash at that size, and tlog.CheckRecord accepts it.
//  5. Each consistency proof: both roots equal Go's tree hashes, and tlog.CheckTree accepts it.
//
// Prints "ok N checks" and exits 0, or prints the first failure and exits 1.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Index int64    `json:"index"`
	Size  int64    `json:"size"`
	Proof []string `json:"proof"`
	Root  string   `json:"root"`
}

type consistency struct {
	Size1 int64    `json:"size1"`
	Size2 int64    `json:"size2"`
	Proof []string `json:"proof"`
	Root1 string   `json:"root1"`
	Root2 string   `json:"root2"`
}

type testCase struct {
	VKey        string        `json:"vkey"`
	Checkpoint  string        `json:"checkpoint"`
	Origin      *string       `json:"origin"`
	Leaves      []string      `json:"leaves"`
	LeafHashes  []string      `json:"leaf_hashes"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
}

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func decodeHash(what, text string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) != tlog.HashSize {
		fail("%s %q is not base64 of %d bytes", what, text, tlog.HashSize)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

func decodeProof(what string, texts []string) []tlog.Hash {
	hashes := make([]tlog.Hash, len(texts))
	for i, text := range texts {
		hashes[i] = decodeHash(fmt.Sprintf("%s hash %d", what, i), text)
	}
	return hashes
}

// parseCheckpoint parses c2sp.org/tlog-checkpoint note text independently of our Python parser.
func parseCheckpoint(text string) (origin string, size int64, root tlog.Hash) {
	if !strings.HasSuffix(text, "\n") {
		fail("checkpoint text does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		fail("checkpoint has %d lines, expected at least 3", len(lines))
	}
	for i, line := range lines {
		if line == "" {
			fail("checkpoint line %d is empty", i+1)
		}
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		fail("checkpoint size %q is not a canonical decimal", lines[1])
	}
	return lines[0], size, decodeHash("checkpoint root", lines[2])
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "tiles" {
		runTiles(os.Args[2], os.Args[3])
		return
	}
	if len(os.Args) != 2 {
		fmt.Println("usage: gocheck CASE.json | gocheck tiles PREFIX VKEY")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("read %s: %v", os.Args[1], err)
	}
	var tc testCase
	if err := json.Unmarshal(data, &tc); err != nil {
		fail("parse %s: %v", os.Args[1], err)
	}
	checks := 0

	// (1)
	verifier, err := note.NewVerifier(tc.VKey)
	if err != nil {
		fail("note.NewVerifier(%q): %v", tc.VKey, err)
	}
	opened, err := note.Open([]byte(tc.Checkpoint), note.VerifierList(verifier))
	if err != nil {
		fail("note.Open: %v", err)
	}
	if len(opened.Sigs) == 0 || opened.Sigs[0].Name != verifier.Name() {
		fail("note.Open returned no signature by %s", verifier.Name())
	}
	checks++

	// (2)
	origin, size, root := parseCheckpoint(opened.Text)
	if tc.Origin != nil && origin != *tc.Origin {
		fail("checkpoint origin %q, expected %q", origin, *tc.Origin)
	}
	checks++

	// (3)
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, index := range indexes {
			if index < 0 || index >= int64(len(stored)) {
				return nil, fmt.Errorf("stored hash %d not available", index)
			}
			out[i] = stored[index]
		}
		return out, nil
	})
	if tc.LeafHashes != nil && len(tc.LeafHashes) != len(tc.Leaves) {
		fail("%d leaf hashes for %d leaves", len(tc.LeafHashes), len(tc.Leaves))
	}
	for i, text := range tc.Leaves {
		leaf, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			fail("leaf %d is not base64", i)
		}
		if tc.LeafHashes != nil {
			if want := decodeHash(fmt.Sprintf("leaf hash %d", i), tc.LeafHashes[i]); tlog.RecordHash(leaf) != want {
				fail("leaf %d: tlog.RecordHash %s, ours %s", i, tlog.RecordHash(leaf), want)
			}
			checks++
		}
		hashes, err := tlog.StoredHashes(int64(i), leaf, reader)
		if err != nil {
			fail("tlog.StoredHashes(%d): %v", i, err)
		}
		stored = append(stored, hashes...)
	}
	treeHash := func(n int64) tlog.Hash {
		if n < 1 || n > int64(len(tc.Leaves)) {
			fail("tree size %d outside 1..%d leaves", n, len(tc.Leaves))
		}
		h, err := tlog.TreeHash(n, reader)
		if err != nil {
			fail("tlog.TreeHash(%d): %v", n, err)
		}
		return h
	}
	if got := treeHash(size); got != root {
		fail("checkpoint root %s, Go's tree hash of %d leaves %s", root, size, got)
	}
	checks++

	// (4)
	for i, c := range tc.Inclusion {
		if c.Index < 0 || c.Index >= int64(len(tc.Leaves)) {
			fail("inclusion %d: index %d has no leaf", i, c.Index)
		}
		leaf, _ := base64.StdEncoding.DecodeString(tc.Leaves[c.Index])
		croot := decodeHash(fmt.Sprintf("inclusion %d root", i), c.Root)
		if got := treeHash(c.Size); got != croot {
			fail("inclusion %d: root at size %d is %s, Go computes %s", i, c.Size, croot, got)
		}
		proof := decodeProof(fmt.Sprintf("inclusion %d", i), c.Proof)
		if err := tlog.CheckRecord(proof, c.Size, croot, c.Index, tlog.RecordHash(leaf)); err != nil {
			fail("inclusion %d (index %d, size %d): tlog.CheckRecord: %v", i, c.Index, c.Size, err)
		}
		checks++
	}

	// (5)
	for i, c := range tc.Consistency {
		root1 := decodeHash(fmt.Sprintf("consistency %d root1", i), c.Root1)
		root2 := decodeHash(fmt.Sprintf("consistency %d root2", i), c.Root2)
		if got := treeHash(c.Size1); got != root1 {
			fail("consistency %d: root1 at size %d is %s, Go computes %s", i, c.Size1, root1, got)
		}
		if got := treeHash(c.Size2); got != root2 {
			fail("consistency %d: root2 at size %d is %s, Go computes %s", i, c.Size2, root2, got)
		}
		proof := decodeProof(fmt.Sprintf("consistency %d", i), c.Proof)
		if err := tlog.CheckTree(proof, c.Size2, root2, c.Size1, root1); err != nil {
			fail("consistency %d (%d -> %d): tlog.CheckTree: %v", i, c.Size1, c.Size2, err)
		}
		checks++
	}

	fmt.Printf("ok %d checks\n", checks)
}
