package linkstate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// allowedImports is everything linkstate's non-test code may import: no
// I/O, no clock, no goroutine machinery.
var allowedImports = []string{"fmt", "errors", "math", "cmp", "slices", "maps", "sort", "strings", "strconv", "time", "net/netip"}

// clockFuncs read or wait on the wall clock.
var clockFuncs = []string{"Now", "Since", "Until", "Sleep", "After", "Tick", "AfterFunc", "NewTimer", "NewTicker"}

// impurities lists what in one Go source breaks the rules: imports outside
// the allow-list, clock calls, go statements.
func impurities(fset *token.FileSet, f *ast.File) []string {
	var bad []string
	timeName := ""
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if !slices.Contains(allowedImports, path) {
			bad = append(bad, fset.Position(imp.Pos()).String()+": imports "+path)
		}
		if path == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && slices.Contains(clockFuncs, n.Sel.Name) {
				bad = append(bad, fset.Position(n.Pos()).String()+": uses time."+n.Sel.Name)
			}
		case *ast.GoStmt:
			bad = append(bad, fset.Position(n.Pos()).String()+": starts a goroutine")
		}
		return true
	})
	return bad
}

func TestImportPurity(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range impurities(fset, f) {
			t.Error(b)
		}
		checked++
	}
	if checked < 4 {
		t.Fatalf("checked %d files; is the test running in the package directory?", checked)
	}
}

// The checker itself catches what it must.
func TestImpuritiesDetects(t *testing.T) {
	src := `package linkstate
import (
	"os"
	clock "time"
	"sync"
)
func f() {
	_ = clock.Now()
	clock.Sleep(1)
	_ = clock.Since(clock.Time{})
	_ = clock.Duration(1) // fine
	go f()
	_ = os.Args
	var _ sync.Mutex
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "bad.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(impurities(fset, f), "\n")
	for _, want := range []string{"imports os", "imports sync", "uses time.Now", "uses time.Sleep", "uses time.Since", "starts a goroutine"} {
		if !strings.Contains(got, want) {
			t.Errorf("checker missed %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Duration") || strings.Count(got, "\n") != 5 {
		t.Errorf("checker reported:\n%s", got)
	}
}
