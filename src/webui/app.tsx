import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, followEvents, formatBytes, formatMs, formatTime, getJson, saveKey, savedKey, type Build, type BuildEvent, type BuildRow, type CacheView, type TemplateDetail } from './api.js';
import { BarChart, LineChart } from './chart.js';

type Route = { view: 'builds' } | { view: 'build'; id: string } | { view: 'templates' } | { view: 'cache' };

function parseRoute(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  if (h.startsWith('build/')) return { view: 'build', id: decodeURIComponent(h.slice(6)) };
  if (h === 'templates') return { view: 'templates' };
  if (h === 'cache') return { view: 'cache' };
  return { view: 'builds' };
}

function useRoute(): Route {
  const [route, setRoute] = useState(parseRoute(location.hash));
  useEffect(() => {
    const on = (): void => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** Load `path` now and every `everyMs` (0: once); errors are shown, never data from a failed call. */
function usePoll<T>(key: string, path: string, everyMs: number, onAuth: (e: ApiError) => void): { data?: T; error?: string } {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async (): Promise<void> => {
      try {
        const data = await getJson<T>(key, path);
        if (!stop) setState({ data });
      } catch (err) {
        if (stop) return;
        if (err instanceof ApiError && err.status === 401) return onAuth(err);
        setState({ error: err instanceof Error ? err.message : String(err) });
      }
      if (!stop && everyMs > 0) timer = setTimeout(load, everyMs);
    };
    void load();
    return () => {
      stop = true;
      if (timer) clearTimeout(timer);
    };
  }, [key, path, everyMs]);
  return state;
}

function Status(props: { status: string }) {
  return <span class={`status status-${props.status}`}>{props.status}</span>;
}

function Login(props: { error?: string; onKey: (key: string) => void }) {
  const [key, setKey] = useState('');
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <main class="login">
      <h1>kiln</h1>
      {props.error ? (
        <div class="error" role="alert" id="login-error">
          <h2>Not signed in</h2>
          <p>{props.error}</p>
        </div>
      ) : null}
      <form onSubmit={(e) => { e.preventDefault(); if (key.trim()) props.onKey(key.trim()); }}>
        <label for="api-key">API key</label>
        <input id="api-key" ref={ref} type="password" autocomplete="off" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} aria-describedby="key-help" required />
        <p id="key-help" class="help">From <code>kiln admin key create --team NAME</code>. Kept in this tab's session only.</p>
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

function Builds(props: { apiKey: string; onAuth: (e: ApiError) => void }) {
  const { data, error } = usePoll<{ builds: BuildRow[] }>(props.apiKey, '/ui/api/builds', 2000, props.onAuth);
  if (error) return <p role="alert" class="error">{error}</p>;
  if (!data) return <p aria-busy="true">Loading builds…</p>;
  if (data.builds.length === 0) return <p>No builds yet.</p>;
  return (
    <table class="builds">
      <caption>Builds of this team, newest first</caption>
      <thead><tr><th scope="col">Build</th><th scope="col">Template</th><th scope="col">Status</th><th scope="col">Duration</th><th scope="col">Steps cached</th><th scope="col">Started by</th><th scope="col">Created</th></tr></thead>
      <tbody>
        {data.builds.map((b) => (
          <tr key={b.id} data-build={b.id}>
            <td data-label="Build"><a href={`#build/${encodeURIComponent(b.id)}`}>{b.id}</a></td>
            <td data-label="Template">{b.template ?? '–'}</td>
            <td data-label="Status"><Status status={b.status} /></td>
            <td data-label="Duration">{formatMs(b.durationMs)}</td>
            <td data-label="Steps cached">{b.totalSteps ? `${b.cachedSteps}/${b.totalSteps}` : '–'}</td>
            <td data-label="Started by">{b.startedBy ? <span>key <code>{b.startedBy}</code></span> : '–'}</td>
            <td data-label="Created">{formatTime(b.created)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface LiveStep { id: string; name: string; state: 'running' | 'cached' | 'done' | 'error'; durationMs?: number; error?: string; log: string; missReason?: string }

function BuildView(props: { apiKey: string; id: string; onAuth: (e: ApiError) => void }) {
  const [build, setBuild] = useState<Build | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [steps, setSteps] = useState<LiveStep[]>([]);
  const [status, setStatus] = useState<string | undefined>();
  const [saved, setSaved] = useState<Map<string, number>>(new Map());
  const heading = useRef<HTMLHeadingElement>(null);

  const load = useCallback(async () => {
    try {
      const b = await getJson<Build>(props.apiKey, `/v1/builds/${encodeURIComponent(props.id)}`);
      setBuild(b);
      setStatus(b.status);
      if (b.result) {
        // the finished build's steps carry the miss reasons: attach them to the streamed steps by name
        const byName = new Map(b.result.steps.map((s) => [s.name, s]));
        setSteps((cur) => cur.map((s) => ({ ...s, missReason: byName.get(s.name)?.missReason })));
        const r = await getJson<{ steps: Array<{ name: string; savedMs: number | null }> }>(props.apiKey, `/ui/api/builds/${encodeURIComponent(props.id)}/saved`);
        setSaved(new Map(r.steps.flatMap((x) => (x.savedMs !== null ? [[x.name, x.savedMs] as [string, number]] : []))));
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return props.onAuth(err);
      setError(err instanceof Error ? err.message : String(err));
    }
  }, [props.apiKey, props.id]);

  useEffect(() => {
    heading.current?.focus();
    setSteps([]);
    setBuild(undefined);
    setError(undefined);
    const ac = new AbortController();
    void load();
    const on = (e: BuildEvent): void => {
      if (e.type === 'finish') {
        setStatus(e.status);
        void load();
        return;
      }
      if (!e.id) return;
      setSteps((cur) => {
        const i = cur.findIndex((s) => s.id === e.id);
        const s: LiveStep = i >= 0 ? { ...cur[i]! } : { id: e.id!, name: e.name ?? e.id!, state: 'running', log: '' };
        if (e.type === 'step-start') s.state = 'running';
        else if (e.type === 'step-cached') s.state = 'cached';
        else if (e.type === 'step-done') { s.state = 'done'; s.durationMs = e.durationMs; }
        else if (e.type === 'step-error') { s.state = 'error'; s.error = e.error; }
        else if (e.type === 'log') s.log += e.data ?? '';
        else return cur;
        const next = [...cur];
        if (i >= 0) next[i] = s;
        else next.push(s);
        return next;
      });
    };
    followEvents(props.apiKey, props.id, on, ac.signal).catch((err: unknown) => {
      if (err instanceof ApiError && err.status === 401) props.onAuth(err);
      else if (!ac.signal.aborted) setError(err instanceof Error ? err.message : String(err));
    });
    return () => ac.abort();
  }, [props.apiKey, props.id]);

  // steps from the stored result when the event log has none (an old build)
  const shown: LiveStep[] = steps.length > 0 || !build?.result ? steps : build.result.steps.map((s, i) => ({ id: String(i), name: s.name, state: s.cached ? 'cached' : 'done', durationMs: s.durationMs, log: '', missReason: s.missReason }));
  const durations = shown.filter((s) => s.durationMs !== undefined || s.state === 'cached');
  return (
    <section aria-labelledby="build-h">
      <p><a href="#builds">← All builds</a></p>
      <h2 id="build-h" tabIndex={-1} ref={heading}>Build <code>{props.id}</code> {status ? <Status status={status} /> : null}</h2>
      {error ? <p role="alert" class="error">{error}</p> : null}
      {build ? (
        <dl class="facts">
          <dt>Template</dt><dd>{build.template ?? '–'}</dd>
          <dt>Duration</dt><dd>{formatMs(build.started && build.finished ? build.finished - build.started : null)}</dd>
          {build.result ? <><dt>Image</dt><dd><code class="digest">{build.result.digest}</code></dd></> : null}
          {build.error ? <><dt>Error</dt><dd class="error-text">{build.error}</dd></> : null}
        </dl>
      ) : null}
      <h3>Steps</h3>
      <ol class="steps" aria-live="polite">
        {shown.map((s) => (
          <li key={s.id} class={`step step-${s.state}`} data-step={s.name}>
            <div class="step-head">
              <span class={`mark mark-${s.state}`} data-state={s.state}>{s.state === 'cached' ? 'CACHED' : s.state === 'done' ? 'DONE' : s.state === 'error' ? 'ERROR' : 'RUNNING'}</span>
              <code class="step-name">{s.name}</code>
              <span class="step-time">{s.state === 'cached' ? '' : formatMs(s.durationMs)}</span>
            </div>
            {s.state !== 'cached' && s.missReason ? (
              <details class="miss">
                <summary>Why it ran</summary>
                <p class="miss-reason">{s.missReason}</p>
              </details>
            ) : null}
            {s.error ? <p class="error-text">{s.error}</p> : null}
            {s.log ? (
              <details class="log" open={s.state === 'running'}>
                <summary>Log</summary>
                <pre tabIndex={0}>{s.log}</pre>
              </details>
            ) : null}
          </li>
        ))}
      </ol>
      {durations.length > 1 ? (
        <BarChart
          title="Step durations"
          description="How long each step of this build took; a cached step shows the time it saved (what it took when it last ran)."
          bars={durations.map((s) => {
            const save = s.state === 'cached' ? saved.get(s.name) : undefined;
            return {
              label: s.name,
              title: `${s.name}: ${s.state === 'cached' ? `cached${save !== undefined ? `, saved ${formatMs(save)}` : ''}` : formatMs(s.durationMs)}`,
              parts: [s.state === 'cached' ? { value: save ?? 0, kind: 'saved' as const } : { value: s.durationMs ?? 0, kind: 'ran' as const }],
            };
          })}
          unit={(v) => (v ? formatMs(v) : 'cached')}
        />
      ) : null}
    </section>
  );
}

function Templates(props: { apiKey: string; onAuth: (e: ApiError) => void }) {
  const { data, error } = usePoll<{ templates: Array<{ name: string }> }>(props.apiKey, '/v1/templates', 0, props.onAuth);
  const [details, setDetails] = useState<Record<string, TemplateDetail>>({});
  useEffect(() => {
    if (!data) return;
    for (const t of data.templates) {
      getJson<TemplateDetail>(props.apiKey, `/v1/templates/${encodeURIComponent(t.name)}`).then((d) => setDetails((cur) => ({ ...cur, [t.name]: d })), () => undefined);
    }
  }, [data]);
  if (error) return <p role="alert" class="error">{error}</p>;
  if (!data) return <p aria-busy="true">Loading templates…</p>;
  if (data.templates.length === 0) return <p>No templates yet.</p>;
  return (
    <table>
      <caption>Templates</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Tags</th><th scope="col">Size</th><th scope="col">Digest</th></tr></thead>
      <tbody>
        {data.templates.map((t) => {
          const d = details[t.name];
          return (
            <tr key={t.name} data-template={t.name} data-loaded={d ? 'yes' : 'no'}>
              <td data-label="Name">{t.name}</td>
              <td data-label="Tags">{d ? d.tags.map((x) => x.tag).join(', ') : '…'}</td>
              <td data-label="Size">{d ? formatBytes(d.size) : '…'}</td>
              <td data-label="Digest">{d ? <code class="digest" title={d.digest}>{d.digest.slice(0, 19)}…</code> : '…'}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function Cache(props: { apiKey: string; onAuth: (e: ApiError) => void }) {
  const { data, error } = usePoll<CacheView>(props.apiKey, '/ui/api/cache', 10_000, props.onAuth);
  if (error) return <p role="alert" class="error">{error}</p>;
  if (!data) return <p aria-busy="true">Loading cache figures…</p>;
  const saved = data.templates.reduce((n, t) => n + t.savedMs, 0);
  return (
    <section aria-labelledby="cache-h">
      <h2 id="cache-h">Cache</h2>
      <dl class="facts">
        <dt>{data.source === 'registry' ? "Bytes pushed to the team's shared cache" : "Size of the team's state root"}</dt><dd data-testid="cache-size">{formatBytes(data.sizeBytes)}</dd>
        <dt>Time saved by cache hits</dt><dd>{formatMs(saved)}</dd>
      </dl>
      <table>
        <caption>Hit rate per template (successful builds)</caption>
        <thead><tr><th scope="col">Template</th><th scope="col">Builds</th><th scope="col">Steps cached</th><th scope="col">Hit rate</th><th scope="col">Time saved</th></tr></thead>
        <tbody>
          {data.templates.map((t) => (
            <tr key={t.name}>
              <td data-label="Template">{t.name}</td>
              <td data-label="Builds">{t.builds}</td>
              <td data-label="Steps cached">{t.hits}/{t.steps}</td>
              <td data-label="Hit rate">{Math.round(t.hitRate * 100)}%</td>
              <td data-label="Time saved">{formatMs(t.savedMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data.growth.length > 1 ? (
        <LineChart
          title="Cache size over builds"
          description={data.source === 'registry'
            ? "Bytes the workers pushed to the team's shared registry cache, added up to the end of each recent successful build (what the registry's GC removed is still counted)."
            : "Bytes the team's cache holds now (blobs and snapshots), counted by when each was added, at the end of each recent successful build; what GC removed is not counted."}
          points={data.growth.map((g) => ({ label: formatTime(g.at), value: g.bytes }))}
          unit={formatBytes}
        />
      ) : null}
      {data.series.length > 0 ? (
        <BarChart
          title="Time run and time saved, per build"
          description="For each recent successful build: the time its steps ran, and the time its cached steps saved (what each took when it last ran)."
          bars={data.series.map((s) => ({ label: `${s.template ?? s.id}`, title: `${s.id}: ran ${formatMs(s.ranMs)}, saved ${formatMs(s.savedMs)}, ${s.cachedSteps}/${s.totalSteps} cached`, parts: [{ value: s.ranMs, kind: 'ran' }, { value: s.savedMs, kind: 'saved' }] }))}
          unit={formatMs}
        />
      ) : null}
    </section>
  );
}

function App() {
  const [key, setKey] = useState<string | null>(savedKey());
  const [team, setTeam] = useState<string | undefined>();
  const [authError, setAuthError] = useState<string | undefined>();
  const route = useRoute();

  const signOut = useCallback((message?: string) => {
    saveKey(null);
    setKey(null);
    setTeam(undefined);
    setAuthError(message);
  }, []);
  const onAuth = useCallback((e: ApiError) => signOut(e.message), [signOut]);

  useEffect(() => {
    if (!key) return;
    getJson<{ team: string }>(key, '/ui/api/whoami').then(
      (r) => { saveKey(key); setTeam(r.team); setAuthError(undefined); },
      (err: unknown) => signOut(err instanceof ApiError && err.status === 401 ? `That key was not accepted: ${err.message}. Nothing is shown without a valid key.` : err instanceof Error ? err.message : String(err)),
    );
  }, [key]);

  if (!key || (!team && authError)) return <Login error={authError} onKey={(k) => { setAuthError(undefined); setKey(k); }} />;
  if (!team) return <p aria-busy="true">Signing in…</p>;
  const tab = route.view === 'build' ? 'builds' : route.view;
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header>
        <h1>kiln</h1>
        <nav aria-label="Sections">
          {(['builds', 'templates', 'cache'] as const).map((v) => (
            <a key={v} href={`#${v}`} aria-current={tab === v ? 'page' : undefined}>{v[0]!.toUpperCase() + v.slice(1)}</a>
          ))}
        </nav>
        <p class="who">Team <strong data-testid="team">{team}</strong> <button type="button" onClick={() => signOut()}>Sign out</button></p>
      </header>
      <main id="main">
        {route.view === 'builds' ? <Builds apiKey={key} onAuth={onAuth} /> : null}
        {route.view === 'build' ? <BuildView apiKey={key} id={route.id} onAuth={onAuth} /> : null}
        {route.view === 'templates' ? <Templates apiKey={key} onAuth={onAuth} /> : null}
        {route.view === 'cache' ? <Cache apiKey={key} onAuth={onAuth} /> : null}
      </main>
    </>
  );
}

render(<App />, document.getElementById('root')!);
