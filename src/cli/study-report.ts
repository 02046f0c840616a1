/**
 * `ceg report --study NAME [--format table|json|csv|md] [--out FILE] [--figures DIR]`: the
 * study's table (text), its summary as JSON (src/report/study-summary.ts), flat rows as
 * csv/md, and its figures (src/report/study-figures.ts) as PNG and SVG in DIR.
 */
import path from 'node:path';
import { analyzeStudyData, formatStudyReport, type StudyData } from '../report/study.js';
import { studyRows, studySummary, STUDY_ROW_COLUMNS } from '../report/study-summary.js';
import { studyFigures } from '../report/study-figures.js';
import { loadGundlachPoints } from '../report/anchors-data.js';
import { exportFigures } from '../report/export.js';
import { emit, formatRows, type OutputFormat } from '../report/formats.js';

export async function reportStudy(
  d: StudyData,
  o: { format: OutputFormat; out?: string; figures?: string },
): Promise<void> {
  const a = analyzeStudyData(d);
  if (o.format === 'table') emit(formatStudyReport(d, a) + '\n', o.out);
  else {
    const s = studySummary(d, a);
    emit(
      o.format === 'json'
        ? JSON.stringify(s, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n'
        : formatRows(studyRows(s), STUDY_ROW_COLUMNS, o.format),
      o.out,
    );
  }
  if (o.figures) {
    const s = studySummary(d, a);
    const { figures, notes } = studyFigures(d, a, s, loadGundlachPoints());
    for (const n of notes) console.error(`[ceg] figures: ${n}`);
    const written = await exportFigures(figures, o.figures);
    console.error(`[ceg] ${figures.length} study figures, ${written.length} files in ${path.resolve(o.figures)}`);
  }
}
