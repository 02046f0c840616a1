/**
 * The anchors' committed data files (data/anchors/, with their sources in its README): read and
 * parsed by src/ceg/anchors.ts and src/ceg/speedrun.ts.
 */
import fs from 'node:fs';
import { projectPath } from '../paths.js';
import { parseGundlachCsv, type GundlachPoint } from '../ceg/anchors.js';
import { parseSpeedrunCsv, type SpeedrunRecord } from '../ceg/speedrun.js';

export const GUNDLACH_POINTS_FILE = projectPath('data/anchors/gundlach-scaling-final-points.csv');
export const SPEEDRUN_RECORDS_FILE = projectPath('data/anchors/modded-nanogpt-track1-records.csv');

/** Gundlach et al.'s final scaling points (arXiv 2511.21622). */
export function loadGundlachPoints(file = GUNDLACH_POINTS_FILE): GundlachPoint[] {
  return parseGundlachCsv(fs.readFileSync(file, 'utf8'), file);
}

/** The modded-nanogpt track-1 record history. */
export function loadSpeedrunRecords(file = SPEEDRUN_RECORDS_FILE): SpeedrunRecord[] {
  return parseSpeedrunCsv(fs.readFileSync(file, 'utf8'), file);
}
