import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isBuildError } from '../../../errors/index.js';
import { createShellLexer, envLookupFrom } from './index.js';

const env = envLookupFrom(['A=xxa', 'B=a b', 'N=line1\nline2', 'E=', 'R=$0-$$-${0}-$1-$x-${x-$']);

function syntaxError(fn: () => unknown): Error & { code: string; hint: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(isBuildError(err));
    assert.equal(err.code, 'ERR_KILN_DOCKERFILE_SYNTAX');
    return err;
  }
  assert.fail('expected an error');
}

describe('createShellLexer (default mode)', () => {
  const lex = createShellLexer();

  it('expands simple and braced variables, leaving unknown ones empty', () => {
    assert.equal(lex.processWord('$A-${A}-$NOPE-${NOPE}', env), 'xxa-xxa--');
  });

  it('names the variable and the message of ${X:?msg}, and gives a hint', () => {
    const unset = syntaxError(() => lex.processWord('${Z?oops $B}', env));
    assert.match(unset.message, /Z: oops a b/);
    assert.match(unset.hint, /Z/);
    assert.match(syntaxError(() => lex.processWord('${E:?}', env)).message, /E: is not allowed to be empty/);
    assert.match(syntaxError(() => lex.processWord('${Z:?}', env)).message, /Z: is not allowed to be unset/);
  });

  it('reports the word that failed', () => {
    assert.match(syntaxError(() => lex.processWord('${aaa', env)).message, /"\$\{aaa".*missing '}'/);
    assert.match(syntaxError(() => lex.processWord('${A:#x}', env)).message, /unsupported modifier \(:#\)/);
    assert.match(syntaxError(() => lex.processWord('${A/x', env)).message, /missing '\/'/);
    assert.match(syntaxError(() => lex.processWord('${A#\\x}', env)).message, /invalid pattern \(\\x\)/);
  });

  it('uses Go replace-all rules: no second replacement of an empty match right after a match', () => {
    assert.equal(lex.processWord('${A//*/-}', env), '-');
    assert.equal(lex.processWord('${A//x*/-}', env), '-');
    assert.equal(lex.processWord('${A///-}', env), '-x-x-a-');
  });

  it('expands $0 and $$ in a replace-all replacement like Go templates, but not in a single replace', () => {
    assert.equal(lex.processWord('${A//x/$R}', env), 'x-$-x---${x-$x-$-x---${x-$a');
    assert.equal(lex.processWord('${A/x/$R}', env), '$0-$$-${0}-$1-$x-${x-$xa');
  });

  it('lets * and ? match anything but a newline, as Go regexp does', () => {
    assert.equal(lex.processWord('${N##*}', env), '\nline2');
    assert.equal(lex.processWord('${N%%1*}', env), 'line1\nline2');
    assert.equal(lex.processWord('${N//?/.}', env), '.....\n.....');
  });

  it('keeps "<<" and the blanks after it in one word', () => {
    assert.deepEqual(lex.processWords('cat << EOF x', env), ['cat', '<< EOF', 'x']);
  });

  it('splits unquoted expansions but not quoted ones', () => {
    assert.deepEqual(lex.processWords('x ${B} "$B"', env), ['x', 'a', 'b', 'a b']);
  });

  it('drops text before ${V:-w} in the same split word, as BuildKit does', () => {
    assert.deepEqual(lex.processWords('hello${Z:-abc} x${A}', env), ['abc', 'xxxa']);
    assert.equal(lex.processWord('hello${Z:-abc}', env), 'helloabc');
  });

  it('ignores a leading byte-order mark', () => {
    assert.equal(lex.processWord('\uFEFF$A', env), 'xxa');
  });

  it('returns fresh matched / unmatched sets per call', () => {
    const first = lex.processWordWithMatches('$A $Z', env);
    const second = lex.processWordWithMatches('$B', env);
    assert.deepEqual([...first.matched], ['A']);
    assert.deepEqual([...first.unmatched], ['Z']);
    assert.deepEqual([...second.matched], ['B']);
    assert.equal(second.unmatched.size, 0);
  });
});

describe('createShellLexer (options)', () => {
  it('escapeToken ` escapes with backtick and leaves backslash literal', () => {
    const lex = createShellLexer({ escapeToken: '`' });
    assert.equal(lex.processWord('C:\\dir\\`$A "a`"b" "c\\d"', env), 'C:\\dir\\$A a"b c\\d');
    assert.equal(lex.processWord('${A#`x}', env), 'xxa');
  });

  it('rawQuotes, rawEscapes and skipUnsetEnv keep the text as written where nothing expands', () => {
    const lex = createShellLexer({ rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
    const words = lex.processWords('<<"EOF" \'a b\' \\t "\\t" $Z ${Z} ${Z:-q} ${Z/a/b} ${Z//a/b} $A', env);
    // "\t" in double quotes with raw escapes doubles the backslash, and // becomes / when unset: both upstream quirks
    assert.deepEqual(words, ['<<"EOF"', "'a b'", '\\t', '"\\\\t"', '$Z', '${Z}', '${Z:-q}', '${Z/a/b}', '${Z/a/b}', 'xxa']);
  });

  it('skipProcessQuotes treats quotes as ordinary characters', () => {
    const lex = createShellLexer({ skipProcessQuotes: true });
    assert.equal(lex.processWord('"$A" \'$B\' \\"', env), '"xxa" \'a b\' "');
  });
});

describe('envLookupFrom', () => {
  it('reads KEY=value lists (last wins, bare key is empty) and Maps', () => {
    const fromList = envLookupFrom(['K=1', 'bare', 'K=2=3']);
    assert.equal(fromList('K'), '2=3');
    assert.equal(fromList('bare'), '');
    assert.equal(fromList('k'), undefined);
    const fromMap = envLookupFrom(new Map([['M', '']]));
    assert.equal(fromMap('M'), '');
    assert.equal(fromMap('X'), undefined);
  });
});
