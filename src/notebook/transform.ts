/**
 * Turn one TypeScript notebook cell into a script that runs in a shared scope.
 *
 * The cell is transpiled with TypeScript's transpileModule (types stripped, no type check),
 * then its top-level statements are rewritten so that what they declare outlives the cell:
 *   import { a as b } from './x.js'   ->  { const __m = await __ceg.import('./x.js'); b = __m.a; }
 *   const { p, q } = f()              ->  ({ p, q } = f());
 *   function g() {}                   ->  g = function g() {};   (hoisted to the top of the cell)
 *   class K {}                        ->  K = class K {};
 *   last expression `e`               ->  __ceg.last = (e);      (shown as the cell's result)
 * and every `import(x)` becomes `__ceg.import(x)` (so relative paths resolve from the notebook).
 * The executor runs the result inside `with (scope) { ... }` in an async function, so cells may
 * use top-level await and see the names earlier cells declared.
 */
import ts from 'typescript';

export interface TransformedCell {
  /** JavaScript body to run inside `with (scope)` in an async function */
  code: string;
  /** names the cell declares at top level (created on the scope before it runs) */
  names: string[];
  /** the cell ends in an expression whose value is stored in __ceg.last */
  hasResult: boolean;
}

export class CellSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CellSyntaxError';
  }
}

/** Replace `import(x)` calls (anywhere) by `__ceg.import(x)`. */
function importCallTransformer(ctx: ts.TransformationContext): ts.Transformer<ts.SourceFile> {
  const f = ctx.factory;
  const visit = (node: ts.Node): ts.Node => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      return f.createCallExpression(
        f.createPropertyAccessExpression(f.createIdentifier('__ceg'), 'import'),
        undefined,
        node.arguments.map((a) => ts.visitNode(a, visit) as ts.Expression),
      );
    }
    return ts.visitEachChild(node, visit, ctx);
  };
  return (sf) => ts.visitNode(sf, visit) as ts.SourceFile;
}

function bindingNames(name: ts.BindingName, out: string[]): void {
  if (ts.isIdentifier(name)) {
    out.push(name.text);
    return;
  }
  for (const el of name.elements) {
    if (ts.isOmittedExpression(el)) continue;
    bindingNames(el.name, out);
  }
}

/** TypeScript cell source -> JavaScript (types stripped; imports kept verbatim). */
export function transpileCell(source: string): string {
  const out = ts.transpileModule(source, {
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      // keep value imports even when this cell does not use them (later cells may)
      verbatimModuleSyntax: true,
      esModuleInterop: true,
      sourceMap: false,
    },
    reportDiagnostics: true,
    transformers: { before: [importCallTransformer] },
  });
  const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length) {
    const d = errors[0];
    const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    const where = pos ? `line ${pos.line + 1}:${pos.character + 1}: ` : '';
    throw new CellSyntaxError(where + ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  }
  // transpileModule adds `export {};` to module-like files: drop it
  return out.outputText.replace(/^export \{\};\s*$/m, '');
}

export function transformCell(source: string): TransformedCell {
  const js = transpileCell(source);
  const sf = ts.createSourceFile('cell.js', js, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const names: string[] = [];
  const prologue: string[] = [];
  const body: string[] = [];
  let hasResult = false;
  const text = (n: ts.Node) => js.slice(n.getStart(sf), n.end);
  const stmts = sf.statements;
  stmts.forEach((st, idx) => {
    const isLast = idx === stmts.length - 1;
    if (ts.isImportDeclaration(st)) {
      const spec = JSON.stringify((st.moduleSpecifier as ts.StringLiteral).text);
      const clause = st.importClause;
      if (!clause) {
        body.push(`await __ceg.import(${spec});`);
        return;
      }
      if (clause.isTypeOnly) return;
      const assigns: string[] = [];
      if (clause.name) {
        names.push(clause.name.text);
        assigns.push(`${clause.name.text} = __m.default;`);
      }
      const nb = clause.namedBindings;
      if (nb && ts.isNamespaceImport(nb)) {
        names.push(nb.name.text);
        assigns.push(`${nb.name.text} = __m;`);
      } else if (nb) {
        for (const el of nb.elements) {
          if (el.isTypeOnly) continue;
          const local = el.name.text;
          const imported = el.propertyName ? (el.propertyName as ts.Identifier).text : local;
          names.push(local);
          assigns.push(`${local} = __m[${JSON.stringify(imported)}];`);
        }
      }
      body.push(`{ const __m = await __ceg.import(${spec}); ${assigns.join(' ')} }`);
      return;
    }
    if (ts.isVariableStatement(st)) {
      const isVar = !(st.declarationList.flags & (ts.NodeFlags.Let | ts.NodeFlags.Const));
      for (const d of st.declarationList.declarations) {
        const before = names.length;
        bindingNames(d.name, names);
        if (d.initializer) {
          body.push(ts.isIdentifier(d.name) ? `${d.name.text} = (${text(d.initializer)});` : `(${text(d.name)} = (${text(d.initializer)}));`);
        } else if (!isVar) {
          for (const n of names.slice(before)) body.push(`${n} = undefined;`);
        }
      }
      return;
    }
    if (ts.isFunctionDeclaration(st) && st.name) {
      names.push(st.name.text);
      const src = text(st).replace(/^export\s+(default\s+)?/, '');
      prologue.push(`${st.name.text} = ${src};`);
      return;
    }
    if (ts.isClassDeclaration(st) && st.name) {
      names.push(st.name.text);
      const src = text(st).replace(/^export\s+(default\s+)?/, '');
      body.push(`${st.name.text} = ${src};`);
      return;
    }
    if (ts.isExportDeclaration(st) || ts.isExportAssignment(st)) {
      throw new CellSyntaxError('notebook cells cannot export; declare a name instead (it is shared with later cells)');
    }
    if (isLast && ts.isExpressionStatement(st)) {
      hasResult = true;
      body.push(`__ceg.last = (${text(st.expression)});`);
      return;
    }
    body.push(js.slice(st.getFullStart(), st.end));
  });
  return { code: [...prologue, ...body].join('\n'), names: [...new Set(names)], hasResult };
}
