package disktest

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// Run runs the conformance suite against the file systems newFS returns. It
// calls newFS once per subtest and expects an empty file system each time.
func Run(t *testing.T, newFS func(t *testing.T) core.FS) {
	tests := []struct {
		name string
		run  func(t *testing.T, fsys core.FS)
	}{
		{"CreateWriteReadAt", testCreateWriteReadAt},
		{"ReadAtEOF", testReadAtEOF},
		{"WriteDoesNotRetain", testWriteDoesNotRetain},
		{"CreateTruncatesExisting", testCreateTruncatesExisting},
		{"OpenAppends", testOpenAppends},
		{"OpenMissing", testOpenMissing},
		{"TruncateThenAppend", testTruncateThenAppend},
		{"TruncateGrowZeroFills", testTruncateGrowZeroFills},
		{"SharedInode", testSharedInode},
		{"RenameReplaces", testRenameReplaces},
		{"RenameErrors", testRenameErrors},
		{"RenameDirectory", testRenameDirectory},
		{"Remove", testRemove},
		{"RemoveAll", testRemoveAll},
		{"MkdirAll", testMkdirAll},
		{"ReadDirSorted", testReadDirSorted},
		{"SyncAndSyncDir", testSyncAndSyncDir},
		{"BadNames", testBadNames},
		{"DirectoryAsFile", testDirectoryAsFile},
		{"ClosedFile", testClosedFile},
		{"OpenFileOutlivesRemove", testOpenFileOutlivesRemove},
		{"ManyAppends", testManyAppends},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			test.run(t, newFS(t))
		})
	}
}

// create creates name with content and closes it.
func create(t *testing.T, fsys core.FS, name, content string) {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	write(t, f, content)
	if err := f.Close(); err != nil {
		t.Fatalf("Close(%q): %v", name, err)
	}
}

func write(t *testing.T, f core.File, content string) {
	t.Helper()
	n, err := f.Write([]byte(content))
	if err != nil || n != len(content) {
		t.Fatalf("Write(%d bytes) = %d, %v", len(content), n, err)
	}
}

// contents reads the whole file through Size and ReadAt.
func contents(t *testing.T, f core.File) string {
	t.Helper()
	size, err := f.Size()
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	buffer := make([]byte, size)
	n, err := f.ReadAt(buffer, 0)
	if n != int(size) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(%d bytes, 0) = %d, %v", size, n, err)
	}
	return string(buffer)
}

// fileContents opens name and returns its contents.
func fileContents(t *testing.T, fsys core.FS, name string) string {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	defer f.Close()
	return contents(t, f)
}

func expectNotExist(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: got error %v, want one matching fs.ErrNotExist", what, err)
	}
}

func expectError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want an error", what)
	}
}

func names(t *testing.T, fsys core.FS, dir string) string {
	t.Helper()
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir(%q): %v", dir, err)
	}
	var list []string
	for _, entry := range entries {
		name := entry.Name
		if entry.IsDir {
			name += "/"
		}
		list = append(list, name)
	}
	return strings.Join(list, " ")
}

// testCreateWriteReadAt checks that appended writes are read back at any
// offset, and that Size counts every write, by writing two pieces and reading
// whole and partial ranges.
func testCreateWriteReadAt(t *testing.T, fsys core.FS) {
	f, err := fsys.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, "hello")
	write(t, f, ", world")
	if n, err := f.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v; want 0, nil", n, err)
	}
	if got := contents(t, f); got != "hello, world" {
		t.Fatalf("contents = %q", got)
	}
	buffer := make([]byte, 5)
	n, err := f.ReadAt(buffer, 3)
	if n != 5 || err != nil || string(buffer) != "lo, w" {
		t.Fatalf("ReadAt(5, 3) = %d, %v, %q", n, err, buffer)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileContents(t, fsys, "a"); got != "hello, world" {
		t.Fatalf("after reopen, contents = %q", got)
	}
}

// testReadAtEOF checks io.ReaderAt's end-of-file rules: a read crossing the
// end returns the bytes before it and io.EOF; a read at or past the end
// returns 0 and io.EOF; a negative offset is an error.
func testReadAtEOF(t *testing.T, fsys core.FS) {
	f, err := fsys.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write(t, f, "0123456789")
	buffer := make([]byte, 4)
	n, err := f.ReadAt(buffer, 8)
	if n != 2 || err != io.EOF || string(buffer[:n]) != "89" {
		t.Fatalf("ReadAt(4, 8) = %d, %v, %q; want 2, io.EOF, \"89\"", n, err, buffer[:n])
	}
	for _, offset := range []int64{10, 11, 1000} {
		n, err = f.ReadAt(buffer, offset)
		if n != 0 || err != io.EOF {
			t.Fatalf("ReadAt(4, %d) = %d, %v; want 0, io.EOF", offset, n, err)
		}
	}
	n, err = f.ReadAt(buffer, -1)
	if n != 0 || err == nil {
		t.Fatalf("ReadAt(4, -1) = %d, %v; want 0 and an error", n, err)
	}
	n, err = f.ReadAt(buffer[:0], 3)
	if n != 0 || err != nil {
		t.Fatalf("ReadAt(0 bytes, 3) = %d, %v; want 0, nil", n, err)
	}
}

// testWriteDoesNotRetain checks that Write copies its argument, by
// overwriting the buffer after the write and reading the file back.
func testWriteDoesNotRetain(t *testing.T, fsys core.FS) {
	f, err := fsys.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buffer := []byte("abcd")
	if _, err := f.Write(buffer); err != nil {
		t.Fatal(err)
	}
	copy(buffer, "XXXX")
	if got := contents(t, f); got != "abcd" {
		t.Fatalf("contents = %q, want \"abcd\"", got)
	}
}

// testCreateTruncatesExisting checks that Create on an existing file empties
// it, and that writes then start at offset zero.
func testCreateTruncatesExisting(t *testing.T, fsys core.FS) {
	create(t, fsys, "a", "old contents")
	create(t, fsys, "a", "new")
	if got := fileContents(t, fsys, "a"); got != "new" {
		t.Fatalf("contents = %q, want \"new\"", got)
	}
}

// testOpenAppends checks that Open keeps the contents and that writes through
// the opened file go to its end.
func testOpenAppends(t *testing.T, fsys core.FS) {
	create(t, fsys, "a", "first")
	f, err := fsys.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, "+second")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileContents(t, fsys, "a"); got != "first+second" {
		t.Fatalf("contents = %q", got)
	}
}

// testOpenMissing checks that opening a missing file, or creating one in a
// missing directory, fails with an error matching fs.ErrNotExist.
func testOpenMissing(t *testing.T, fsys core.FS) {
	_, err := fsys.Open("missing")
	expectNotExist(t, "Open(missing)", err)
	_, err = fsys.Open("no/such/dir")
	expectNotExist(t, "Open(no/such/dir)", err)
	_, err = fsys.Create("no/such/file")
	expectNotExist(t, "Create(no/such/file)", err)
}

// testTruncateThenAppend checks that after shrinking a file, the next write
// lands at the new end and not at the old one.
func testTruncateThenAppend(t *testing.T, fsys core.FS) {
	f, err := fsys.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write(t, f, "0123456789")
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4); err != nil {
		t.Fatal(err)
	}
	if size, err := f.Size(); size != 4 || err != nil {
		t.Fatalf("Size after Truncate(4) = %d, %v", size, err)
	}
	write(t, f, "abc")
	if got := contents(t, f); got != "0123abc" {
		t.Fatalf("contents = %q, want \"0123abc\"", got)
	}
	if err := f.Truncate(-1); err == nil {
		t.Fatal("Truncate(-1) succeeded")
	}
}

// testTruncateGrowZeroFills checks that growing a file with Truncate fills
// the gap with zero bytes and that writes then follow the gap.
func testTruncateGrowZeroFills(t *testing.T, fsys core.FS) {
	f, err := fsys.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write(t, f, "ab")
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	write(t, f, "z")
	if got := contents(t, f); got != "ab\x00\x00\x00z" {
		t.Fatalf("contents = %q", got)
	}
}

// testSharedInode checks that two open handles of one file see each other's
// writes and truncations, as two descriptors of one inode do.
func testSharedInode(t *testing.T, fsys core.FS) {
	first, err := fsys.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := fsys.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	write(t, first, "one")
	write(t, second, "two")
	if got := contents(t, first); got != "onetwo" {
		t.Fatalf("contents through first = %q", got)
	}
	if err := second.Truncate(2); err != nil {
		t.Fatal(err)
	}
	write(t, first, "!")
	if got := contents(t, second); got != "on!" {
		t.Fatalf("contents through second = %q", got)
	}
}

// testRenameReplaces checks that Rename moves a file, replaces an existing
// target, and that the old name no longer exists.
func testRenameReplaces(t *testing.T, fsys core.FS) {
	create(t, fsys, "a", "from a")
	create(t, fsys, "b", "from b")
	if err := fsys.Rename("a", "b"); err != nil {
		t.Fatal(err)
	}
	if got := fileContents(t, fsys, "b"); got != "from a" {
		t.Fatalf("b = %q, want \"from a\"", got)
	}
	_, err := fsys.Open("a")
	expectNotExist(t, "Open(a) after rename", err)
	if err := fsys.MkdirAll("dir"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rename("b", "dir/c"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, fsys, "."); got != "dir/" {
		t.Fatalf("root = %q", got)
	}
	if got := fileContents(t, fsys, "dir/c"); got != "from a" {
		t.Fatalf("dir/c = %q", got)
	}
	if err := fsys.Rename("dir/c", "dir/c"); err != nil {
		t.Fatalf("Rename onto itself: %v", err)
	}
	if got := fileContents(t, fsys, "dir/c"); got != "from a" {
		t.Fatalf("dir/c after self-rename = %q", got)
	}
}

// testRenameErrors checks that Rename refuses a missing source, a missing
// target directory, replacing a directory with a file, and moving a directory
// below itself.
func testRenameErrors(t *testing.T, fsys core.FS) {
	expectNotExist(t, "Rename(missing, x)", fsys.Rename("missing", "x"))
	create(t, fsys, "a", "a")
	expectNotExist(t, "Rename(a, nodir/a)", fsys.Rename("a", "nodir/a"))
	if err := fsys.MkdirAll("dir/sub"); err != nil {
		t.Fatal(err)
	}
	expectError(t, "Rename(a, dir)", fsys.Rename("a", "dir"))
	expectError(t, "Rename(dir, dir/sub/x)", fsys.Rename("dir", "dir/sub/x"))
	if got := fileContents(t, fsys, "a"); got != "a" {
		t.Fatalf("a after failed renames = %q", got)
	}
	if got := names(t, fsys, "."); got != "a dir/" {
		t.Fatalf("root after failed renames = %q", got)
	}
}

// testRenameDirectory checks that renaming a directory to a new name moves
// everything below it.
func testRenameDirectory(t *testing.T, fsys core.FS) {
	if err := fsys.MkdirAll("old/sub"); err != nil {
		t.Fatal(err)
	}
	create(t, fsys, "old/sub/f", "data")
	if err := fsys.Rename("old", "new"); err != nil {
		t.Fatal(err)
	}
	if got := fileContents(t, fsys, "new/sub/f"); got != "data" {
		t.Fatalf("new/sub/f = %q", got)
	}
	_, err := fsys.ReadDir("old")
	expectNotExist(t, "ReadDir(old)", err)
}

// testRemove checks that Remove deletes files and empty directories, refuses
// non-empty directories with an error matching fs.ErrExist (ENOTEMPTY), and
// reports missing names with fs.ErrNotExist.
func testRemove(t *testing.T, fsys core.FS) {
	create(t, fsys, "a", "a")
	if err := fsys.Remove("a"); err != nil {
		t.Fatal(err)
	}
	_, err := fsys.Open("a")
	expectNotExist(t, "Open(a) after Remove", err)
	expectNotExist(t, "Remove(a) twice", fsys.Remove("a"))
	if err := fsys.MkdirAll("dir"); err != nil {
		t.Fatal(err)
	}
	create(t, fsys, "dir/f", "f")
	err = fsys.Remove("dir")
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Remove(non-empty dir) = %v, want an error matching fs.ErrExist", err)
	}
	if err := fsys.Remove("dir/f"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove("dir"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, fsys, "."); got != "" {
		t.Fatalf("root after removes = %q", got)
	}
}

// testRemoveAll checks that RemoveAll deletes a whole tree, deletes single
// files, and treats a missing name as success.
func testRemoveAll(t *testing.T, fsys core.FS) {
	if err := fsys.MkdirAll("top/a/b"); err != nil {
		t.Fatal(err)
	}
	create(t, fsys, "top/a/b/f", "f")
	create(t, fsys, "top/g", "g")
	create(t, fsys, "keep", "k")
	if err := fsys.RemoveAll("top"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.RemoveAll("top"); err != nil {
		t.Fatalf("RemoveAll of a missing name: %v", err)
	}
	if err := fsys.RemoveAll("missing/deeper"); err != nil {
		t.Fatalf("RemoveAll below a missing directory: %v", err)
	}
	if got := names(t, fsys, "."); got != "keep" {
		t.Fatalf("root = %q, want \"keep\"", got)
	}
	if err := fsys.RemoveAll("keep"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, fsys, "."); got != "" {
		t.Fatalf("root = %q, want empty", got)
	}
}

// testMkdirAll checks that MkdirAll creates nested directories, accepts
// existing ones (and "."), and fails when a file is in the way.
func testMkdirAll(t *testing.T, fsys core.FS) {
	for range 2 {
		if err := fsys.MkdirAll("a/b/c"); err != nil {
			t.Fatal(err)
		}
	}
	if err := fsys.MkdirAll("."); err != nil {
		t.Fatalf("MkdirAll(.): %v", err)
	}
	if got := names(t, fsys, "a/b"); got != "c/" {
		t.Fatalf("a/b = %q", got)
	}
	create(t, fsys, "a/file", "x")
	expectError(t, "MkdirAll(a/file)", fsys.MkdirAll("a/file"))
	expectError(t, "MkdirAll(a/file/sub)", fsys.MkdirAll("a/file/sub"))
}

// testReadDirSorted checks that ReadDir lists names sorted bytewise, marks
// directories, lists "." as the root, and fails on missing directories and on
// files.
func testReadDirSorted(t *testing.T, fsys core.FS) {
	for _, name := range []string{"b", "a", "C", "a.log", "z"} {
		create(t, fsys, name, name)
	}
	if err := fsys.MkdirAll("dir"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, fsys, "."); got != "C a a.log b dir/ z" {
		t.Fatalf("root = %q", got)
	}
	_, err := fsys.ReadDir("missing")
	expectNotExist(t, "ReadDir(missing)", err)
	_, err = fsys.ReadDir("a")
	expectError(t, "ReadDir(a file)", err)
}

// testSyncAndSyncDir checks that Sync and SyncDir succeed on existing files
// and directories, and that SyncDir of a missing directory fails with
// fs.ErrNotExist.
func testSyncAndSyncDir(t *testing.T, fsys core.FS) {
	if err := fsys.MkdirAll("dir"); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create("dir/f")
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, "data")
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"dir", "."} {
		if err := fsys.SyncDir(dir); err != nil {
			t.Fatalf("SyncDir(%q): %v", dir, err)
		}
	}
	expectNotExist(t, "SyncDir(missing)", fsys.SyncDir("missing"))
}

// badNames are names every implementation must reject.
var badNames = []string{"", "/abs", "..", "../up", "a/../../up", "a//b", "a/", "./a", "a/.", "a\x00b"}

// testBadNames checks that every operation rejects names that are not clean or
// that escape the root with an error, and creates nothing.
func testBadNames(t *testing.T, fsys core.FS) {
	create(t, fsys, "a", "a")
	for _, name := range badNames {
		_, err := fsys.Create(name)
		expectError(t, "Create("+name+")", err)
		_, err = fsys.Open(name)
		expectError(t, "Open("+name+")", err)
		expectError(t, "Remove("+name+")", fsys.Remove(name))
		expectError(t, "RemoveAll("+name+")", fsys.RemoveAll(name))
		expectError(t, "Rename(a, "+name+")", fsys.Rename("a", name))
		expectError(t, "Rename("+name+", b)", fsys.Rename(name, "b"))
		expectError(t, "MkdirAll("+name+")", fsys.MkdirAll(name))
		_, err = fsys.ReadDir(name)
		expectError(t, "ReadDir("+name+")", err)
		expectError(t, "SyncDir("+name+")", fsys.SyncDir(name))
	}
	// The root itself is not a file and may not be removed or renamed.
	_, err := fsys.Create(".")
	expectError(t, "Create(.)", err)
	expectError(t, "Remove(.)", fsys.Remove("."))
	expectError(t, "RemoveAll(.)", fsys.RemoveAll("."))
	expectError(t, "Rename(., b)", fsys.Rename(".", "b"))
	if got := names(t, fsys, "."); got != "a" {
		t.Fatalf("root after bad names = %q, want \"a\"", got)
	}
}

// testDirectoryAsFile checks that a directory cannot be created over or
// opened as a file.
func testDirectoryAsFile(t *testing.T, fsys core.FS) {
	if err := fsys.MkdirAll("dir"); err != nil {
		t.Fatal(err)
	}
	_, err := fsys.Create("dir")
	expectError(t, "Create(dir)", err)
	_, err = fsys.Open("dir")
	expectError(t, "Open(dir)", err)
}

// testClosedFile checks that every File method after Close fails with an
// error matching fs.ErrClosed, including a second Close.
func testClosedFile(t *testing.T, fsys core.FS) {
	f, err := fsys.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, "data")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, writeErr := f.Write([]byte("x"))
	_, readErr := f.ReadAt(make([]byte, 1), 0)
	_, sizeErr := f.Size()
	errs := map[string]error{
		"Write": writeErr, "ReadAt": readErr, "Size": sizeErr,
		"Sync": f.Sync(), "Truncate": f.Truncate(0), "Close": f.Close(),
	}
	for _, method := range []string{"Write", "ReadAt", "Size", "Sync", "Truncate", "Close"} {
		if !errors.Is(errs[method], fs.ErrClosed) {
			t.Errorf("%s after Close = %v, want an error matching fs.ErrClosed", method, errs[method])
		}
	}
	if got := fileContents(t, fsys, "a"); got != "data" {
		t.Fatalf("contents after use of a closed file = %q", got)
	}
}

// testOpenFileOutlivesRemove checks POSIX semantics that log segment deletion
// relies on: a file removed while open stays readable and writable through
// the open handle, and a new file under the same name is a different file.
func testOpenFileOutlivesRemove(t *testing.T, fsys core.FS) {
	create(t, fsys, "a", "old")
	f, err := fsys.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fsys.Remove("a"); err != nil {
		t.Fatal(err)
	}
	create(t, fsys, "a", "new")
	write(t, f, "+more")
	if got := contents(t, f); got != "old+more" {
		t.Fatalf("removed file through its handle = %q", got)
	}
	if got := fileContents(t, fsys, "a"); got != "new" {
		t.Fatalf("new file = %q", got)
	}
}

// testManyAppends checks that many small appends accumulate in order, by
// writing a thousand numbered records and comparing the file byte for byte.
func testManyAppends(t *testing.T, fsys core.FS) {
	const recordsCount = 1000
	f, err := fsys.Create("log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var expected bytes.Buffer
	for i := range recordsCount {
		record := strings.Repeat(string(rune('a'+i%26)), 1+i%37)
		write(t, f, record)
		expected.WriteString(record)
	}
	if got := contents(t, f); got != expected.String() {
		t.Fatalf("contents differ: %d bytes, want %d", len(got), expected.Len())
	}
}
