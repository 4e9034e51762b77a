/**
 * The public API surface as text: every name exported by the two package entry points
 * (lib/index.ts → `ts-kcm`, lib/testing.ts → `ts-kcm/testing`), its kind, the signature of
 * functions and the public members of classes and interfaces. docs/api-snapshot.txt holds
 * the committed copy; a unit test fails when they differ, so no public name disappears or
 * changes by accident. `npm run api:update` rewrites the snapshot after a deliberate change.
 */
import ts from 'typescript';

export const ENTRY_POINTS = { 'ts-kcm': 'lib/index.ts', 'ts-kcm/testing': 'lib/testing.ts' } as const;

export function apiSurface(root: string): string {
  const files = Object.values(ENTRY_POINTS).map((f) => `${root}/${f}`);
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2023,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const lines: string[] = [];
  for (const [entry, file] of Object.entries(ENTRY_POINTS)) {
    const source = program.getSourceFile(`${root}/${file}`);
    if (!source) throw new Error(`api surface: cannot read ${file}`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    if (!moduleSymbol) throw new Error(`api surface: ${file} is not a module`);
    for (const exported of checker
      .getExportsOfModule(moduleSymbol)
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const sym = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      lines.push(...describe(entry, exported.name, sym, checker));
    }
  }
  return lines.join('\n') + '\n';
}

function describe(entry: string, name: string, sym: ts.Symbol, checker: ts.TypeChecker): string[] {
  const f = sym.flags;
  const out: string[] = [];
  const members = (type: ts.Type): void => {
    for (const p of checker.getPropertiesOfType(type).sort((a, b) => a.name.localeCompare(b.name))) {
      const decl = p.valueDeclaration ?? p.declarations?.[0];
      const mods = decl && ts.canHaveModifiers(decl) ? (ts.getModifiers(decl) ?? []) : [];
      if (
        mods.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)
      )
        continue;
      if (p.name.startsWith('__')) continue;
      out.push(`${entry} ${name}.${p.name}${p.flags & ts.SymbolFlags.Optional ? '?' : ''}`);
    }
  };
  if (f & ts.SymbolFlags.Class) {
    out.push(`${entry} ${name}: class`);
    const decl = sym.valueDeclaration ?? sym.declarations?.[0];
    if (decl) members(checker.getDeclaredTypeOfSymbol(sym));
  } else if (f & ts.SymbolFlags.Function) {
    const type = checker.getTypeOfSymbol(sym);
    for (const sig of type.getCallSignatures())
      out.push(
        `${entry} ${name}: function ${checker.signatureToString(sig, undefined, ts.TypeFormatFlags.NoTruncation)}`,
      );
  } else if (f & ts.SymbolFlags.Interface) {
    out.push(`${entry} ${name}: interface`);
    members(checker.getDeclaredTypeOfSymbol(sym));
  } else if (f & ts.SymbolFlags.TypeAlias) {
    out.push(`${entry} ${name}: type`);
  } else if (f & ts.SymbolFlags.Variable) {
    out.push(`${entry} ${name}: const`);
  } else if (f & ts.SymbolFlags.Enum) {
    out.push(`${entry} ${name}: enum`);
  } else {
    out.push(`${entry} ${name}: other`);
  }
  return out;
}
