"""This project's patches to FerretDB's source, applied by the bootstrap before it builds it.

The patched texts are Go source quoted verbatim, so this module is exempt from the line length.
"""

from __future__ import annotations

from typing import Final

# Local patches to FerretDB, applied to the copied module source before the build:
# (file, original text, replacement, why). Each original must be found exactly once, so a
# version bump that moved the code fails the build loudly instead of building it unpatched.
FERRETDB_PATCHES: Final = (
    (
        "internal/backends/sqlite/metadata/metadata.go",
        """IDColumn = DefaultColumn + "->'$._id'\"""",
        """IDColumn = DefaultColumn + "->'_id'\"""",
        # The `_id` pushdown and the by-`_id` UPDATE/DELETE compare `sjson->'$._id'`, while the
        # unique `_id_` index is built on `sjson->"_id"`: SQLite does not take the two for the
        # same expression, so every lookup by `_id` scanned the table (EXPLAIN: SCAN; FerretDB
        # issues #3340 and #3235). `->'_id'` is the same JSON path and matches the index.
        "the _id lookups use the _id index",
    ),
    (
        "internal/backends/sqlite/collection.go",
        """if params.Filter.Len() == 1 {
\t\tv, _ := params.Filter.Get("_id")
\t\tswitch v.(type) {
\t\tcase string, types.ObjectID:
\t\t\twhereClause""",
        """if params.Filter.Len() >= 1 {
\t\tv, _ := params.Filter.Get("_id")
\t\tswitch v.(type) {
\t\tcase string, types.ObjectID:
\t\t\twhereClause""",
        # A filter of `_id` plus conditions (`{_id: x, "f.k": {$exists: false}}`, the shape of
        # every conditional update here) was not pushed down at all. Every handler filters the
        # rows again with the whole filter, so `_id` alone is a safe pre-filter.
        "an _id equality pre-filters a filter with more conditions",
    ),
    (
        "internal/backends/sqlite/collection.go",
        """\t\t\targs = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
\t\t}
\t}

\tq += whereClause""",
        """\t\t\targs = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
\t\tcase *types.Document:
\t\t\tif lo, hi, ok := hvcIDPrefixRange(v.(*types.Document)); ok {
\t\t\t\twhereClause = fmt.Sprintf(` WHERE %s >= ? AND %s < ?`, metadata.IDColumn, metadata.IDColumn)
\t\t\t\targs = []any{lo, hi}
\t\t\t} else if ids, ok := hvcIDIn(v.(*types.Document)); ok {
\t\t\t\twhereClause = fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", "))
\t\t\t\targs = ids
\t\t\t}
\t\t}
\t}

\tq += whereClause""",
        # A range of `_id` strings (`{_id: {$gte: "c|", $lt: "c}"}}`: a customer's insert-only
        # documents) scanned the whole table. Pre-filtered by the index instead, on the range of
        # JSON texts that start with the bounds' common prefix cut to characters JSON never
        # escapes: every string in the range has that prefix, so the rows are a superset, and
        # the handler filters them again. (Strings only; other bounds are not pushed down.)
        # Likewise `{_id: {$in: [strings]}}` (a page of customers' profiles at once) scanned
        # the table; now the index's rows for those ids (at most 500; more: not pushed down).
        "an _id string range or $in pre-filters by the _id index",
    ),
    (
        "internal/backends/sqlite/collection.go",
        """// InsertAll implements backends.Collection interface.
""",
        """// hvcIDPrefixRange: the JSON-text range of the `_id` values that start with the
// common prefix of a string range's bounds (hvc's local patch, see FERRETDB_PATCHES).
func hvcIDPrefixRange(d *types.Document) (string, string, bool) {
\tvar lo, hi string
\tvar hasLo, hasHi bool
\tfor _, k := range d.Keys() {
\t\tv, _ := d.Get(k)
\t\ts, isString := v.(string)
\t\tif !isString {
\t\t\treturn "", "", false
\t\t}
\t\tswitch k {
\t\tcase "$gte", "$gt":
\t\t\tlo, hasLo = s, true
\t\tcase "$lt", "$lte":
\t\t\thi, hasHi = s, true
\t\tdefault:
\t\t\treturn "", "", false
\t\t}
\t}
\tif !hasLo || !hasHi {
\t\treturn "", "", false
\t}
\tsafe := func(b byte) bool {
\t\t// printable ASCII that no JSON encoder escapes (Go's escapes < > & too)
\t\treturn b >= 0x20 && b < 0x7f && b != '"' && b != '\\\\' && b != '<' && b != '>' && b != '&'
\t}
\tn := 0
\tfor n < len(lo) && n < len(hi) && lo[n] == hi[n] && safe(lo[n]) {
\t\tn++
\t}
\tif n == 0 {
\t\treturn "", "", false
\t}
\tprefix := `"` + lo[:n]
\tlast := prefix[len(prefix)-1]
\treturn prefix, prefix[:len(prefix)-1] + string(rune(last+1)), true
}

// hvcIDIn: the JSON texts of the strings of an `_id` `$in` (hvc's local patch, see
// FERRETDB_PATCHES).
func hvcIDIn(d *types.Document) ([]any, bool) {
\tif d.Len() != 1 {
\t\treturn nil, false
\t}
\tv, _ := d.Get("$in")
\ta, isArray := v.(*types.Array)
\tif !isArray || a.Len() == 0 || a.Len() > 500 {
\t\treturn nil, false
\t}
\targs := make([]any, 0, a.Len())
\tfor i := 0; i < a.Len(); i++ {
\t\te, _ := a.Get(i)
\t\tid, isString := e.(string)
\t\tif !isString {
\t\t\treturn nil, false
\t\t}
\t\targs = append(args, string(must.NotFail(sjson.MarshalSingleValue(id))))
\t}
\treturn args, true
}

// InsertAll implements backends.Collection interface.
""",
        "the _id string range and $in: their helpers",
    ),
    (
        "internal/backends/sqlite/metadata/registry.go",
        """func (r *Registry) IndexesCreate(ctx context.Context, dbName, collectionName string, indexes []IndexInfo) error {
\tr.rw.Lock()
""",
        """func (r *Registry) IndexesCreate(ctx context.Context, dbName, collectionName string, indexes []IndexInfo) error {
\tif r.hvcIndexesExist(dbName, collectionName, indexes) {
\t\treturn nil
\t}

\tr.rw.Lock()
""",
        # createIndexes of indexes that all exist (every start-up after the first) took the
        # registry's write lock and then waited for a pooled SQLite connection to rewrite the
        # collection's settings; with the pool held by open cursors it waited for ever, and
        # every command behind the lock (ping, listCollections, find) with it. Now it is
        # answered under the read lock, with no connection and no write.
        "createIndexes of existing indexes takes no write lock and no connection",
    ),
    (
        "internal/backends/sqlite/metadata/registry.go",
        """// indexesCreate creates indexes in the collection.
""",
        """// hvcIndexesExist: whether the collection has every index of `indexes` by name
// (hvc's local patch, see FERRETDB_PATCHES).
func (r *Registry) hvcIndexesExist(dbName, collectionName string, indexes []IndexInfo) bool {
\tr.rw.RLock()
\tdefer r.rw.RUnlock()

\tc := r.collectionGet(dbName, collectionName)
\tif c == nil {
\t\treturn false
\t}

\tfor _, index := range indexes {
\t\tif !slices.ContainsFunc(c.Settings.Indexes, func(i IndexInfo) bool { return index.Name == i.Name }) {
\t\t\treturn false
\t\t}
\t}

\treturn true
}

// indexesCreate creates indexes in the collection.
""",
        "createIndexes of existing indexes: its helper",
    ),
    (
        "internal/clientconn/cursor/cursor.go",
        """\tlastRecordID int64 // protected by m
""",
        """\tlastRecordID int64 // protected by m
\thvcUsed      atomic.Int64 // unix nanoseconds of the last Next (hvc's local patch)
""",
        # A normal cursor lived as long as its client's connection: a client that stopped
        # reading one (an abandoned async iteration: PyMongo's async cursors send no
        # killCursors when collected) kept its pooled SQLite connection for ever, and 100 such
        # cursors on one database exhausted its pool, so every query on it hung. Like MongoDB
        # (cursorTimeoutMillis), an idle normal cursor is now closed after a time-out.
        "an idle cursor is closed after a time-out: last use",
    ),
    (
        "internal/clientconn/cursor/cursor.go",
        """\tzero, doc, err := c.iter.Next()
\tif doc != nil {""",
        """\tc.hvcUsed.Store(time.Now().UnixNano())

\tzero, doc, err := c.iter.Next()
\tif doc != nil {""",
        "an idle cursor is closed after a time-out: each Next is a use",
    ),
    (
        "internal/clientconn/cursor/cursor.go",
        """\t"sync"
\t"time"
""",
        """\t"sync"
\t"sync/atomic"
\t"time"
""",
        "an idle cursor is closed after a time-out: its import",
    ),
    (
        "internal/clientconn/cursor/registry.go",
        """\tc := newCursor(id, iter, params, r)
\tr.m[id] = c

\tr.wg.Add(1)
\tgo func() {
\t\tdefer r.wg.Done()

\t\tselect {
\t\tcase <-ctx.Done():
\t\t\tr.CloseAndRemove(c)
\t\tcase <-c.removed: // for c.Close() and normal cursors
\t\t}
""",
        """\tc := newCursor(id, iter, params, r)
\tc.hvcUsed.Store(time.Now().UnixNano())
\tr.m[id] = c

\tr.wg.Add(1)
\tgo func() {
\t\tdefer r.wg.Done()

\t\tidle := hvcCursorIdleTimeout()
\t\ttick := time.NewTicker(min(idle, time.Second))
\t\tdefer tick.Stop()

\tloop:
\t\tfor {
\t\t\tselect {
\t\t\tcase <-ctx.Done():
\t\t\t\tr.CloseAndRemove(c)
\t\t\t\tbreak loop
\t\t\tcase <-c.removed: // for c.Close() and normal cursors
\t\t\t\tbreak loop
\t\t\tcase <-tick.C:
\t\t\t\tif c.Type == Normal && time.Since(time.Unix(0, c.hvcUsed.Load())) > idle {
\t\t\t\t\tr.l.Warn("Closing idle cursor", slog.Int64("id", c.ID), slog.String("db", c.DB), slog.String("collection", c.Collection))
\t\t\t\t\tr.CloseAndRemove(c)
\t\t\t\t\tbreak loop
\t\t\t\t}
\t\t\t}
\t\t}
""",
        "an idle cursor is closed after a time-out: the registry closes it",
    ),
    (
        "internal/clientconn/cursor/registry.go",
        """// Global last cursor ID.
""",
        """// hvcCursorIdleTimeout: how long a normal cursor may go unread before it is closed,
// HVC_FERRETDB_CURSOR_IDLE_SECONDS (default 600, MongoDB's cursorTimeoutMillis; hvc's local patch, see FERRETDB_PATCHES).
func hvcCursorIdleTimeout() time.Duration {
\tif s, err := strconv.ParseFloat(os.Getenv("HVC_FERRETDB_CURSOR_IDLE_SECONDS"), 64); err == nil && s > 0 {
\t\treturn time.Duration(s * float64(time.Second))
\t}

\treturn 600 * time.Second
}

// Global last cursor ID.
""",
        "an idle cursor is closed after a time-out: its setting",
    ),
    (
        "internal/clientconn/cursor/registry.go",
        """\t"math/rand"
\t"sync"
""",
        """\t"math/rand"
\t"os"
\t"strconv"
\t"sync"
""",
        "an idle cursor is closed after a time-out: its imports",
    ),
    (
        "internal/handler/msg_update.go",
        """\t\tcloser := iterator.NewMultiCloser()
\t\tdefer closer.Close()

\t\tcloser.Add(res.Iter)

\t\titer := common.FilterIterator(res.Iter, closer, u.Filter)

\t\tif !u.Multi {
\t\t\titer = common.LimitIterator(iter, closer, 1)
\t\t}

\t\tresult, err := common.UpdateDocument(ctx, c, "update", iter, &u)
""",
        """\t\tcloser := iterator.NewMultiCloser()

\t\tcloser.Add(res.Iter)

\t\titer := common.FilterIterator(res.Iter, closer, u.Filter)

\t\tif !u.Multi {
\t\t\titer = common.LimitIterator(iter, closer, 1)
\t\t}

\t\tfound, err := iterator.ConsumeValues(iter)
\t\tcloser.Close()
\t\tif err != nil {
\t\t\treturn 0, 0, nil, lazyerrors.Error(err)
\t\t}

\t\tfoundIter := iterator.Values(iterator.ForSlice(found))
\t\tresult, err := common.UpdateDocument(ctx, c, "update", foundIter, &u)
\t\tfoundIter.Close()
""",
        # Each statement of an update command kept its query open (holding a pooled SQLite
        # connection) until the whole command had run, and wrote in a transaction on a second
        # connection meanwhile. An update of more than 100 statements (a bulk write: the
        # annual run's results in force) held all 100 connections of its database and waited
        # for a 101st for ever; and 100 concurrent single updates, each holding one and
        # waiting for another, did the same (the lost-update test's hang). The matches are now
        # read and the query closed before the statement writes.
        "an update statement closes its query before it writes",
    ),
    (
        "internal/backends/collection.go",
        """\t\tparams = new(QueryParams)
\t}

\tif params.Sort.Len() != 0 {
\t\tmust.BeTrue(params.Sort.Len() == 1)
\t\tsortValue := params.Sort.Map()["$natural"].(int64)
""",
        """\t\tparams = new(QueryParams)
\t}

\tif params.Sort.Len() != 0 {
\t\tmust.BeTrue(params.Sort.Len() == 1)
\t\tsortValue := params.Sort.Map()[params.Sort.Keys()[0]].(int64)
""",
        "a find sorted by _id is sorted by SQLite: the backend contract takes it",
    ),
    (
        "internal/backends/sqlite/query.go",
        """\tv := must.NotFail(sort.Get("$natural"))
\tvar order string
""",
        """\tkey := sort.Keys()[0]
\tv := must.NotFail(sort.Get(key))
\tvar order string
""",
        # A find sorted by `_id` (the annual run's four merged scans) was read whole into the
        # handler's memory and sorted there (FerretDB v1 pushes no sort down but `$natural`):
        # at 1,000,000 customers, 12,000,000 bills, the store stopped answering and the run
        # failed. SQLite sorts it now (its sorter spills to disk), by the `_id`'s SQL value
        # (`->>`): the index's JSON text (`->`) does not sort like the strings it quotes ("C1"
        # after "C1 2025-01": the closing quote is above the space), which the order check
        # below caught.
        "a find sorted by _id is sorted by SQLite: the sort key",
    ),
    (
        "internal/backends/sqlite/query.go",
        """\treturn fmt.Sprintf(" ORDER BY %s%s", metadata.RecordIDColumn, order)
}
""",
        """\tif key == "_id" {
\t\treturn fmt.Sprintf(" ORDER BY %s->>'_id'%s", metadata.DefaultColumn, order)
\t}

\treturn fmt.Sprintf(" ORDER BY %s%s", metadata.RecordIDColumn, order)
}
""",
        "a find sorted by _id is sorted by SQLite: ORDER BY",
    ),
    (
        "internal/handler/msg_find.go",
        """\tcase params.Sort.Len() == 1:
\t\tif params.Sort.Keys()[0] != "$natural" {""",
        """\tcase hvcIDSort(params.Sort):
\t\tqp.Sort = params.Sort // SQLite sorts the rows by `_id` (hvcIDOrder checks the order)
\tcase params.Sort.Len() == 1:
\t\tif params.Sort.Keys()[0] != "$natural" {""",
        "a find sorted by _id is sorted by SQLite: pushed down",
    ),
    (
        "internal/handler/msg_find.go",
        """\titer, err := common.SortIterator(iter, closer, params.Sort)
\tif err != nil {""",
        """\tvar err error
\tif !h.DisablePushdown && hvcIDSort(params.Sort) {
\t\titer = &hvcIDOrder{iter: iter, desc: must.NotFail(params.Sort.Get("_id")).(int64) < 0}
\t} else {
\t\titer, err = common.SortIterator(iter, closer, params.Sort)
\t}
\tif err != nil {""",
        "a find sorted by _id is sorted by SQLite: passed on, not sorted again",
    ),
    (
        "internal/handler/msg_find.go",
        """// makeFindIter creates an iterator chain for the find command.
""",
        """// hvcIDSort: a sort by `_id` alone (hvc's local patch, see FERRETDB_PATCHES).
func hvcIDSort(sort *types.Document) bool {
\treturn sort.Len() == 1 && sort.Keys()[0] == "_id"
}

// hvcIDOrder passes on the rows SQLite sorted by the `_id`'s SQL value (BSON order for
// strings and for numbers, numbers first), and fails the query on an `_id` out of BSON order
// (mixed types SQLite orders otherwise) rather than answer it in a wrong order.
type hvcIDOrder struct {
\titer types.DocumentsIterator
\tdesc bool
\tprev any
}

func (o *hvcIDOrder) Next() (struct{}, *types.Document, error) {
\tk, doc, err := o.iter.Next()
\tif err != nil {
\t\treturn k, nil, err
\t}
\tid, _ := doc.Get("_id")
\tif id != nil && o.prev != nil {
\t\tc := types.CompareOrder(o.prev, id, types.Ascending)
\t\tif (c == types.Greater && !o.desc) || (c == types.Less && o.desc) {
\t\t\treturn k, nil, lazyerrors.Errorf("hvc: _id order from SQLite broken: %v after %v", id, o.prev)
\t\t}
\t}
\to.prev = id
\treturn k, doc, nil
}

func (o *hvcIDOrder) Close() {
\to.iter.Close()
}

// makeFindIter creates an iterator chain for the find command.
""",
        "a find sorted by _id is sorted by SQLite: its helpers",
    ),
)
