package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/sysext-bakery/bakery/sysext"
)

// browser starts headless Chromium for the test and returns a context to
// drive it with chromedp.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (scripts/setup installs it: apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs browser steps, failing the test on an error.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// open navigates to url and waits until sel is visible.
func open(t *testing.T, ctx context.Context, url, sel string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// artifact is where a test writes a file for people to look at:
// $BAKERY_TEST_ARTIFACTS when set (CI keeps it), else the test's temp dir.
func artifact(t *testing.T, name string) string {
	dir := os.Getenv("BAKERY_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	os.MkdirAll(dir, 0o755)
	return filepath.Join(dir, name)
}

// listingRow is an extension as the listing shows it.
type listingRow struct {
	Name, Arches, Signed, Latest string
	Visible                      bool
}

// readListing reads the listing's rows from the page in the browser.
func readListing(t *testing.T, ctx context.Context) map[string]listingRow {
	t.Helper()
	rows := eval[[]listingRow](t, ctx, `[...document.querySelectorAll("tr[data-name]")].map(r => ({
		Name: r.dataset.name,
		Arches: r.querySelector(".arches").innerText.trim(),
		Signed: r.querySelector(".signed").innerText.trim(),
		Latest: r.querySelector("td.version").innerText.trim(),
		Visible: r.offsetParent !== null,
	}))`)
	out := map[string]listingRow{}
	for _, r := range rows {
		out[r.Name] = r
	}
	return out
}

// checkListing compares what the listing shows with what was pushed.
func checkListing(t *testing.T, rows map[string]listingRow) {
	t.Helper()
	want := map[string]listingRow{
		"plain":   {Name: "plain", Arches: "arm64 x86-64", Signed: "unsigned", Latest: "1.0", Visible: true},
		"multi":   {Name: "multi", Arches: "arm64 x86-64", Signed: "signed", Latest: "1.10.0 (3 versions)", Visible: true},
		"armonly": {Name: "armonly", Arches: "arm64", Signed: "signed", Latest: "0.3", Visible: true},
	}
	if len(rows) != len(want) {
		t.Errorf("listing shows %d extensions, want 3: %v", len(rows), rows)
	}
	for name, w := range want {
		if got := rows[name]; got != w {
			t.Errorf("listing row %s = %+v, want %+v", name, got, w)
		}
	}
}

// TestCatalogPage serves three pushed extensions (one unsigned, one with
// two versions, one arm64-only) with bakery registry serve and reads the
// catalog page in headless Chromium: served, filtered with and without
// JavaScript, the detail page against the pushed digests, the sync.yaml
// snippet through bakery sync, a hostile description, and the static
// export served by python3 -m http.server.
func TestCatalogPage(t *testing.T) {
	ctx := browser(t)
	work := t.TempDir()
	for _, k := range []string{"good", "other"} {
		if _, stderr, code := run(t, "keygen", "--out", filepath.Join(work, k)); code != 0 {
			t.Fatalf("keygen: %s", stderr)
		}
	}
	key, pub := filepath.Join(work, "good.key"), filepath.Join(work, "good.pub")
	addr := serveRegistry(t, "--key", pub)
	const hostile = `<script>document.title="pwned"</script><img src=x onerror="document.title='pwned'"> "quoted" & 'single'`

	// digests are the pushed digests: index per NAME:VERSION, image per file.
	digests := map[string]string{}
	push := func(name, version string, arches []string, signed bool, annotations ...string) {
		t.Helper()
		dir := t.TempDir()
		for _, a := range arches {
			img := sysextImage(t, dir, name, version, a)
			data, _ := os.ReadFile(img)
			sum := sha256.Sum256(data)
			digests[filepath.Base(img)] = "sha256:" + hex.EncodeToString(sum[:])
		}
		args := []string{"push", dir, addr + "/demo/" + name, "--insecure", "--json"}
		if signed {
			args = append(args, "--key", key)
		}
		for _, a := range annotations {
			args = append(args, "--annotation", a)
		}
		stdout, stderr, code := run(t, args...)
		if code != 0 {
			t.Fatalf("push %s %s: %s", name, version, stderr)
		}
		var res struct{ IndexDigest string }
		json.Unmarshal([]byte(stdout), &res)
		digests[name+":"+version] = res.IndexDigest
	}
	push("plain", "1.0", []string{"x86-64", "arm64"}, false)
	push("multi", "1.2.0", []string{"x86-64", "arm64"}, true, "org.opencontainers.image.description=Two versions")
	push("multi", "1.9.0", []string{"x86-64", "arm64"}, true)
	push("multi", "1.10.0", []string{"x86-64", "arm64"}, true)
	push("armonly", "0.3", []string{"arm64"}, true, "org.opencontainers.image.description="+hostile)

	base := "http://" + addr
	t.Run("listing", func(t *testing.T) {
		open(t, ctx, base+"/", "table.extensions")
		if url := eval[string](t, ctx, "location.pathname"); url != "/ns/demo/" {
			t.Errorf("/ went to %s, want the only namespace's listing /ns/demo/", url)
		}
		checkListing(t, readListing(t, ctx))
		checkTrust(t, ctx, true)
		checkHostile(t, ctx, hostile)
		screenshot(t, ctx, "page-listing.png")
	})

	t.Run("filter without JavaScript", func(t *testing.T) {
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		defer chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
		open(t, ctx, base+"/ns/demo/?arch=x86-64", "table.extensions")
		rows := readListing(t, ctx)
		if rows["armonly"].Visible || !rows["plain"].Visible || !rows["multi"].Visible {
			t.Errorf("?arch=x86-64 shows %+v: want armonly hidden, the others shown", rows)
		}
		if shown := eval[string](t, ctx, `document.querySelector("#shown").innerText`); shown != "2 of 3 extensions" {
			t.Errorf("count says %q", shown)
		}
		if n := eval[int](t, ctx, `[...document.querySelectorAll("button.copy-button")].filter(b => !b.hidden).length`); n != 0 {
			t.Errorf("%d copy buttons shown without JavaScript, where they cannot work", n)
		}
	})

	t.Run("filter as you type", func(t *testing.T) {
		open(t, ctx, base+"/ns/demo/", "#arch")
		do(t, ctx, chromedp.SetValue(chromedp.CSS("#arch"), "x86-64"))
		eval[chromedp.Void](t, ctx, `document.querySelector("#arch").dispatchEvent(new Event("change"))`)
		if rows := readListing(t, ctx); rows["armonly"].Visible || !rows["multi"].Visible {
			t.Errorf("choosing x86-64 shows %+v: want armonly hidden", rows)
		}
		do(t, ctx, chromedp.SetValue(chromedp.CSS("#arch"), ""), chromedp.SendKeys(chromedp.CSS("#q"), "ARM"))
		eval[chromedp.Void](t, ctx, `document.querySelector("#arch").dispatchEvent(new Event("change"))`)
		if rows := readListing(t, ctx); !rows["armonly"].Visible || rows["multi"].Visible || rows["plain"].Visible {
			t.Errorf("typing ARM shows %+v: want armonly only", rows)
		}
	})

	t.Run("detail", func(t *testing.T) {
		open(t, ctx, base+"/ns/demo/", "table.extensions")
		do(t, ctx, chromedp.Click(chromedp.CSS(`a[href="ext/multi.html"]`)), chromedp.WaitVisible(chromedp.CSS("ol.versions")))
		versions := eval[[]string](t, ctx, `[...document.querySelectorAll(".version-entry h3 .version")].map(e => e.innerText)`)
		indexDigests := eval[[]string](t, ctx, `[...document.querySelectorAll(".version-entry dl.facts code.digest")].map(e => e.innerText)`)
		imageDigests := eval[[]string](t, ctx, `[...document.querySelectorAll("table.images code.digest")].map(e => e.innerText)`)
		if want := []string{"1.10.0", "1.9.0", "1.2.0"}; !slices.Equal(versions, want) {
			t.Errorf("versions %v, want %v (version order, newest first)", versions, want)
		}
		for _, v := range []string{"1.10.0", "1.9.0", "1.2.0"} {
			if !slices.Contains(indexDigests, digests["multi:"+v]) {
				t.Errorf("index digest of %s (%s) not shown: %v", v, digests["multi:"+v], indexDigests)
			}
			for _, a := range []string{"x86-64", "arm64"} {
				if d := digests[fmt.Sprintf("multi-%s-%s.raw", v, a)]; !slices.Contains(imageDigests, d) {
					t.Errorf("image digest %s of %s %s not shown", d, v, a)
				}
			}
		}
		screenshot(t, ctx, "page-detail.png")
		do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		defer do(t, ctx, chromedp.EmulateViewport(1280, 900))
		screenshot(t, ctx, "page-detail-phone.png")
		open(t, ctx, base+"/ns/demo/", "table.extensions")
		screenshot(t, ctx, "page-listing-phone.png")
	})

	t.Run("sync.yaml snippet", func(t *testing.T) {
		open(t, ctx, base+"/ns/demo/ext/multi.html", "#sync-yaml")
		snippet := eval[string](t, ctx, `document.querySelector("#sync-yaml").textContent`)
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "etc/bakery"), 0o755)
		os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\n"), 0o644)
		data, _ := os.ReadFile(pub)
		os.WriteFile(filepath.Join(root, "etc/bakery/release.pub"), data, 0o644)
		os.WriteFile(filepath.Join(root, "etc/bakery/sync.yaml"), []byte(snippet), 0o644)
		if _, stderr, code := run(t, "sync", "--root", root, "--no-refresh"); code != 0 {
			t.Fatalf("bakery sync with the page's sync.yaml:\n%s\n%s", snippet, stderr)
		}
		got, _ := os.ReadFile(filepath.Join(root, "var/lib/extensions/multi.raw"))
		sum := sha256.Sum256(got)
		if arch := sysext.HostArch().Name; "sha256:"+hex.EncodeToString(sum[:]) != digests["multi-1.10.0-"+arch+".raw"] {
			t.Errorf("sync with the page's sync.yaml installed %x, want multi 1.10.0 %s", sum, arch)
		}
	})

	t.Run("static export", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new", "site")
		if stdout, stderr, code := run(t, "catalog", addr+"/demo", "--insecure", "--key", pub, "--html", dir); code != 0 || !strings.Contains(stdout, "3 extensions") {
			t.Fatalf("catalog --html: %d %s %s", code, stdout, stderr)
		}
		site := serveDir(t, dir)
		open(t, ctx, site+"/index.html", "table.extensions")
		checkListing(t, readListing(t, ctx))
		checkTrust(t, ctx, true)
		checkHostile(t, ctx, hostile)
		open(t, ctx, site+"/index.html?arch=x86-64", "table.extensions")
		if rows := readListing(t, ctx); rows["armonly"].Visible || !rows["multi"].Visible {
			t.Errorf("static ?arch=x86-64 shows %+v", rows)
		}
		open(t, ctx, site+"/ext/multi.html", "ol.versions")
		versions := eval[[]string](t, ctx, `[...document.querySelectorAll(".version-entry h3 .version")].map(e => e.innerText)`)
		if want := []string{"1.10.0", "1.9.0", "1.2.0"}; !slices.Equal(versions, want) {
			t.Errorf("static versions %v, want %v", versions, want)
		}
	})

	t.Run("catalog that does not verify", func(t *testing.T) {
		dir := t.TempDir()
		_, stderr, code := run(t, "catalog", addr+"/demo", "--insecure", "--key", filepath.Join(work, "other.pub"), "--html", dir)
		if code != 1 || !strings.Contains(stderr, "does not verify") {
			t.Errorf("catalog --html with a key that did not sign it: exit %d, %s", code, stderr)
		}
		open(t, ctx, serveDir(t, dir)+"/index.html", "table.extensions")
		checkTrust(t, ctx, false)
		if rows := readListing(t, ctx); rows["multi"].Signed != "claimed" {
			t.Errorf("an unverified catalog's signed version shows %q, want claimed", rows["multi"].Signed)
		}
		screenshot(t, ctx, "page-unverified.png")
	})
}

// checkTrust checks what the page says about the catalog's signature.
func checkTrust(t *testing.T, ctx context.Context, verified bool) {
	t.Helper()
	ok := eval[string](t, ctx, `(document.querySelector(".trust.ok") || {}).innerText || ""`)
	warn := eval[string](t, ctx, `(document.querySelector(".trust.warn") || {}).innerText || ""`)
	switch {
	case verified && (!strings.Contains(ok, "Signed catalog verified with key") || warn != ""):
		t.Errorf("verified catalog shows %q / %q", ok, warn)
	case !verified && (ok != "" || !strings.Contains(warn, "Not verified") || !strings.Contains(warn, "does not verify")):
		t.Errorf("unverified catalog shows %q / %q, want a warning", ok, warn)
	}
}

// checkHostile checks that a description holding markup shows as text
// and ran nothing.
func checkHostile(t *testing.T, ctx context.Context, hostile string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // an onerror would have fired
	title := eval[string](t, ctx, "document.title")
	made := eval[int](t, ctx, `document.querySelectorAll("main img, main script").length`)
	if strings.Contains(title, "pwned") || made != 0 {
		t.Errorf("the hostile description ran or made elements: title %q, %d elements", title, made)
	}
	if shown := eval[string](t, ctx, `(document.querySelector('tr[data-name="armonly"] .description') || {}).innerText`); shown != hostile {
		t.Errorf("hostile description shows as %q, want the text %q", shown, hostile)
	}
}

// screenshot writes the page as PNG to a test artifact.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := artifact(t, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// serveDir serves dir with python3 -m http.server on a free loopback port.
func serveDir(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command("python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, port)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://127.0.0.1:" + port
	for range 200 {
		if resp, err := http.Get(url + "/"); err == nil {
			resp.Body.Close()
			return url
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("python3 -m http.server did not come up")
	return ""
}
