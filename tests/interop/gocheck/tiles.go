package main

// The tiles mode: gocheck tiles PREFIX VKEY
//
// Reads a log served in the C2SP tlog-tiles layout under PREFIX (an http:// URL ending in "/") with Go's own
// tile reader, tlog.TileHashReader, which checks every tile it reads against the checkpoint's root.
//
// Plan:
//  1. GET PREFIX/checkpoint; note.Open with VKEY; parse origin, size, root.
//  2. A tlog.TileReader that fetches Go's tiles (height 8) at the C2SP paths: Go's path without its height
//     element ("tile/8/L/N" is served as "tile/L/N").
//  3. tlog.TreeHash at the checkpoint size through the tiles equals the root.
//  4. Every entry bundle (tile/entries/N[.p/W]): uint16 big-endian length-prefixed leaves, each leaf's
//     tlog.RecordHash equal to the level-0 hash the tiles give; and no bytes left over.
//  5. Inclusion proofs (tlog.ProveRecord) for a spread of indexes and consistency proofs (tlog.ProveTree)
//     from a spread of sizes, computed from the tiles alone and printed for the caller to compare.
//
// Prints one JSON object {"size", "root", "leaves", "inclusion": {index: [b64...]}, "consistency":
// {size: [b64...]}} and exits 0, or prints the first failure ("FAIL: ...") and exits 1.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8

func get(url string) []byte {
	response, err := http.Get(url)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	if response.StatusCode != http.StatusOK {
		fail("GET %s: %s: %s", url, response.Status, body)
	}
	return body
}

// c2spPath is the C2SP tlog-tiles path of a Go tile: Go's path names the height, C2SP's does not.
func c2spPath(t tlog.Tile) string {
	return "tile/" + strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", tileHeight))
}

type httpTiles struct {
	prefix string
}

func (r *httpTiles) Height() int { return tileHeight }

func (r *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		data[i] = get(r.prefix + c2spPath(t))
	}
	return data, nil
}

func (r *httpTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func spread(size int64) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, n := range []int64{0, 1, 2, 255, 256, 257, 511, 512, 513, size / 2, size - 2, size - 1} {
		if n >= 0 && n < size && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func encode(hashes []tlog.Hash) []string {
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

func runTiles(prefix, vkey string) {
	// (1)
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("note.NewVerifier(%q): %v", vkey, err)
	}
	opened, err := note.Open(get(prefix+"checkpoint"), note.VerifierList(verifier))
	if err != nil {
		fail("note.Open: %v", err)
	}
	_, size, root := parseCheckpoint(opened.Text)

	// (2), (3)
	tiles := &httpTiles{prefix: prefix}
	hashes := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, tiles)
	if got, err := tlog.TreeHash(size, hashes); err != nil || got != root {
		fail("tlog.TreeHash(%d) through the tiles: %s, %v; checkpoint root %s", size, got, err, root)
	}

	// (4)
	var leaves int64
	for n := int64(0); n*(1<<tileHeight) < size; n++ {
		width := size - n*(1<<tileHeight)
		if width > 1<<tileHeight {
			width = 1 << tileHeight
		}
		path := "tile/entries/" + strings.TrimPrefix(tlog.Tile{H: tileHeight, L: 0, N: n, W: int(width)}.Path(), fmt.Sprintf("tile/%d/0/", tileHeight))
		bundle := get(prefix + path)
		for len(bundle) > 0 {
			if len(bundle) < 2 {
				fail("%s: a length prefix is cut off", path)
			}
			length := int(bundle[0])<<8 | int(bundle[1])
			if len(bundle) < 2+length {
				fail("%s: leaf %d runs past the end", path, leaves)
			}
			want, err := hashes.ReadHashes([]int64{tlog.StoredHashIndex(0, leaves)})
			if err != nil {
				fail("level-0 hash %d: %v", leaves, err)
			}
			if got := tlog.RecordHash(bundle[2 : 2+length]); got != want[0] {
				fail("%s: leaf %d hashes to %s, the tiles say %s", path, leaves, got, want[0])
			}
			bundle = bundle[2+length:]
			leaves++
		}
	}
	if leaves != size {
		fail("the entry bundles hold %d leaves, the checkpoint %d", leaves, size)
	}

	// (5)
	result := map[string]interface{}{"size": size, "root": base64.StdEncoding.EncodeToString(root[:]), "leaves": leaves}
	inclusion := map[string][]string{}
	for _, index := range spread(size) {
		proof, err := tlog.ProveRecord(size, index, hashes)
		if err != nil {
			fail("tlog.ProveRecord(%d, %d): %v", size, index, err)
		}
		inclusion[strconv.FormatInt(index, 10)] = encode(proof)
	}
	consistency := map[string][]string{}
	for _, old := range spread(size + 1) {
		if old == 0 {
			continue
		}
		proof, err := tlog.ProveTree(size, old, hashes)
		if err != nil {
			fail("tlog.ProveTree(%d, %d): %v", size, old, err)
		}
		consistency[strconv.FormatInt(old, 10)] = encode(proof)
	}
	result["inclusion"], result["consistency"] = inclusion, consistency
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}
