// Added by engagiert (deploy/local/ferretdb): not part of FerretDB.
//
// FerretDB v1 runs every update and findAndModify as read-modify-write without a lock: it
// queries the matching documents, applies the update in Go and writes each document back by
// _id. Two concurrent updates of one document both read the old value and the second write
// wins, so updates are lost (seen: 60 concurrent $inc gave +10), and two findAndModify calls
// can both "claim" the same document. MongoDB applies each single-document update atomically,
// and the engagiert services rely on that.
//
// These locks restore it for a single FerretDB process (the local stack runs one): an update
// whose filter names one _id holds that document's lock (and the collection's shared lock)
// from its query to its write; any other update holds the collection's exclusive lock.

package handler

import (
	"fmt"
	"sync"

	"github.com/FerretDB/FerretDB/internal/types"
)

type engagiertIDLock struct {
	mu   sync.Mutex
	refs int
}

type engagiertCollLocks struct {
	rw  sync.RWMutex
	mu  sync.Mutex
	ids map[string]*engagiertIDLock
}

type engagiertLockTable struct {
	mu    sync.Mutex
	colls map[string]*engagiertCollLocks
}

var engagiertLocks = &engagiertLockTable{colls: map[string]*engagiertCollLocks{}}

func (t *engagiertLockTable) coll(db, coll string) *engagiertCollLocks {
	t.mu.Lock()
	defer t.mu.Unlock()

	key := db + "\x00" + coll

	c := t.colls[key]
	if c == nil {
		c = &engagiertCollLocks{ids: map[string]*engagiertIDLock{}}
		t.colls[key] = c
	}

	return c
}

// lock blocks until the caller may read and write the documents filter matches; it returns the unlock.
func (t *engagiertLockTable) lock(db, coll string, filter *types.Document) func() {
	c := t.coll(db, coll)

	var id any
	if filter != nil {
		if v, err := filter.Get("_id"); err == nil {
			switch v.(type) {
			case *types.Document, *types.Array, types.Regex:
				// an operator, a list or a pattern: it may match several documents
			default:
				id = v
			}
		}
	}

	if id == nil {
		c.rw.Lock()
		return c.rw.Unlock
	}

	key := fmt.Sprintf("%T\x00%v", id, id)

	c.rw.RLock()
	c.mu.Lock()

	l := c.ids[key]
	if l == nil {
		l = &engagiertIDLock{}
		c.ids[key] = l
	}

	l.refs++
	c.mu.Unlock()
	l.mu.Lock()

	return func() {
		l.mu.Unlock()
		c.mu.Lock()

		l.refs--
		if l.refs == 0 {
			delete(c.ids, key)
		}

		c.mu.Unlock()
		c.rw.RUnlock()
	}
}
