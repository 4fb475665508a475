/**
 * Writes docs/api/README.md: the API reference of everything `src/index.ts` (`sdpa-dispatch`) and
 * backends/onnxruntime/public.ts (`sdpa-dispatch/onnxruntime`) export, generated
 * from the TypeScript declarations and their JSDoc with the compiler API. One markdown file rather
 * than a typedoc site: it renders on GitHub, diffs readably and stays small. Run: npm run docs:api.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));
const entry = `${root}src/index.ts`;
const subpathEntry = `${root}backends/onnxruntime/public.ts`;
const target = `${root}docs/api/README.md`;

const configFile = ts.readConfigFile(`${root}tsconfig.json`, (p) => ts.sys.readFile(p));
const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root);
const program = ts.createProgram([entry, subpathEntry], { ...parsed.options, noEmit: true });
const checker = program.getTypeChecker();

function moduleOf(file: string): ts.Symbol {
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`cannot read ${file}`);
  const sym = checker.getSymbolAtLocation(source);
  if (!sym) throw new Error(`${file} is not a module`);
  return sym;
}

const FLAGS = ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseAliasDefinedOutsideCurrentScope | ts.TypeFormatFlags.WriteArrowStyleSignature;

/** `{@link x}` / `{@link x | label}` → inline code (the markdown has no link targets for them). */
function links(s: string): string {
  return s.replace(/\{@link(?:code|plain)?\s+([^}|\s]+)\s*(?:\|\s*([^}]*))?\}/g, (_, target: string, label?: string) => `\`${(label ?? target).trim()}\``);
}

/** JSDoc text plus its tags (@param, @example, …) as markdown. */
function docOf(sym: ts.Symbol | ts.Signature): string {
  const text = ts.displayPartsToString(sym.getDocumentationComment(checker)).trim();
  const tags = sym.getJsDocTags(checker);
  const out: string[] = text ? [text] : [];
  const params = tags.filter((t) => t.name === 'param');
  if (params.length) {
    out.push('', '| parameter | |', '| --- | --- |');
    for (const t of params) {
      const [name, ...rest] = ts.displayPartsToString(t.text).split(/\s+/);
      out.push(`| \`${name}\` | ${rest.join(' ').replace(/\|/g, '\\|')} |`);
    }
  }
  for (const t of tags) {
    const body = ts.displayPartsToString(t.text).trim();
    if (t.name === 'returns') out.push('', `**Returns** ${body}`);
    else if (t.name === 'throws') out.push('', `**Throws** ${body}`);
    else if (t.name === 'example') out.push('', '```ts', body.replace(/^```\w*\n?|```$/g, '').trim(), '```');
  }
  return links(out.join('\n'));
}

function isInternal(sym: ts.Symbol): boolean {
  return sym.getJsDocTags(checker).some((t) => t.name === 'internal') || sym.getName().startsWith('#') || sym.getName().startsWith('_');
}

function memberLines(sym: ts.Symbol, decl: ts.Node): string[] {
  const type = checker.getDeclaredTypeOfSymbol(sym);
  const lines: string[] = [];
  for (const m of checker.getPropertiesOfType(type)) {
    const md = m.valueDeclaration ?? m.declarations?.[0];
    if (!md || isInternal(m)) continue;
    const mods = ts.getCombinedModifierFlags(md as ts.Declaration);
    if (mods & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
    const mt = checker.getTypeOfSymbolAtLocation(m, decl);
    const sigs = mt.getCallSignatures();
    const optional = m.flags & ts.SymbolFlags.Optional ? '?' : '';
    const readonly = mods & ts.ModifierFlags.Readonly ? 'readonly ' : '';
    const sig = ts.isMethodDeclaration(md) || ts.isMethodSignature(md)
      ? sigs.map((s) => `${m.getName()}${checker.signatureToString(s, undefined, FLAGS & ~ts.TypeFormatFlags.WriteArrowStyleSignature)}`).join('; ')
      : ts.isGetAccessor(md)
        ? `get ${m.getName()}: ${checker.typeToString(mt, undefined, FLAGS)}`
        : `${readonly}${m.getName()}${optional}: ${checker.typeToString(mt, undefined, FLAGS)}`;
    const doc = links(ts.displayPartsToString(m.getDocumentationComment(checker))).replace(/\s*\n\s*/g, ' ').trim();
    lines.push(`| \`${sig.replace(/\|/g, '\\|')}\` | ${doc.replace(/\|/g, '\\|')} |`);
  }
  return lines;
}

interface Entry {
  name: string;
  section: string;
  text: string;
}

/** One entry per documented export of `mod`. */
function collect(mod: ts.Symbol): Entry[] {
  const entries: Entry[] = [];
  for (const exp of checker.getExportsOfModule(mod)) {
    const sym = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
    const name = exp.getName();
    if (isInternal(sym)) continue;
    const decl = sym.declarations?.[0];
    if (!decl) continue;
    const file = decl.getSourceFile().fileName.replace(root, '');
    const parts: string[] = [`### \`${name}\``, '', `<sub>${file}</sub>`, '']; // the anchor goes in front later
    // A name can be both a value and a type (SDPBackend, Tensor): document the value side first.
    if (sym.flags & ts.SymbolFlags.Function) {
      for (const s of checker.getTypeOfSymbolAtLocation(sym, decl).getCallSignatures()) {
        parts.push('```ts', `function ${name}${checker.signatureToString(s, undefined, FLAGS & ~ts.TypeFormatFlags.WriteArrowStyleSignature)}`, '```', '', docOf(s), '');
      }
      entries.push({ name, section: 'Functions', text: parts.join('\n') });
    } else if (sym.flags & ts.SymbolFlags.Class) {
      parts.push(docOf(sym), '', '| member | |', '| --- | --- |', ...memberLines(sym, decl), '');
      entries.push({ name, section: 'Classes', text: parts.join('\n') });
    } else if (sym.flags & ts.SymbolFlags.Variable) {
      const type = checker.getTypeOfSymbolAtLocation(sym, decl);
      parts.push('```ts', `const ${name}: ${checker.typeToString(type, undefined, FLAGS)}`, '```', '', docOf(sym), '');
      entries.push({ name, section: 'Constants', text: parts.join('\n') });
    } else if (sym.flags & ts.SymbolFlags.Interface) {
      parts.push(docOf(sym), '', '| member | |', '| --- | --- |', ...memberLines(sym, decl), '');
      entries.push({ name, section: 'Interfaces', text: parts.join('\n') });
    } else if (sym.flags & ts.SymbolFlags.TypeAlias) {
      const t = checker.getDeclaredTypeOfSymbol(sym);
      parts.push('```ts', `type ${name} = ${checker.typeToString(t, undefined, FLAGS | ts.TypeFormatFlags.InTypeAlias)}`, '```', '', docOf(sym), '');
      entries.push({ name, section: 'Types', text: parts.join('\n') });
    }
  }
  return entries;
}

const entries = collect(moduleOf(entry));
// The subpath's own exports (types it shares with the main entry are documented there).
const subEntries = collect(moduleOf(subpathEntry)).filter((e) => !entries.some((m) => m.name === e.name));

const order = ['Functions', 'Constants', 'Classes', 'Interfaces', 'Types'];
// `capabilities`/`Capabilities` and `tensor`/`Tensor` differ only in case: GitHub's heading anchors
// would collide, so every entry gets an explicit id, with its section when the name is shared.
const anchor = (e: Entry) =>
  entries.filter((x) => x.name.toLowerCase() === e.name.toLowerCase()).length > 1 ? `${e.name.toLowerCase()}-${e.section.toLowerCase()}` : e.name.toLowerCase();
const out: string[] = [
  '# API reference',
  '',
  '<!-- Generated by scripts/gen-api-docs.ts from the JSDoc of the package entries (npm run docs:api). Do not edit. -->',
  '',
  'Everything `import { … } from \'sdpa-dispatch\'` provides. The essentials are `tensor`, `sdpa`, `explainDispatch`,',
  '`withBackends`, `setBackendEnabled` and `SDPBackend`; see [getting-started.md](../getting-started.md) for a tour.',
  `The onnxruntime interop and session controls come from [\`sdpa-dispatch/onnxruntime\`](#sdpa-dispatchonnxruntime): ${subEntries.map((e) => `\`${e.name}\``).join(', ')}.`,
  '',
];
for (const section of order) {
  const list = entries.filter((e) => e.section === section).sort((a, b) => a.name.localeCompare(b.name));
  if (list.length) out.push(`- **${section}**: ${list.map((e) => `[\`${e.name}\`](#${anchor(e)})`).join(', ')}`);
}
for (const section of order) {
  const list = entries.filter((e) => e.section === section).sort((a, b) => a.name.localeCompare(b.name));
  if (!list.length) continue;
  out.push('', `## ${section}`, '');
  for (const e of list) out.push(`<a id="${anchor(e)}"></a>`, '', e.text);
}
out.push('', '## `sdpa-dispatch/onnxruntime`', '', "`import { … } from 'sdpa-dispatch/onnxruntime'` (backends/onnxruntime/public.ts). Importing it loads no onnxruntime package.", '');
for (const e of [...subEntries].sort((a, b) => a.name.localeCompare(b.name))) out.push(`<a id="onnxruntime-${e.name.toLowerCase()}"></a>`, '', e.text);
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, `${out.join('\n').replace(/\n{3,}/g, '\n\n').trim()}\n`);
console.log(`wrote ${target} (${entries.length} + ${subEntries.length} exports)`);
