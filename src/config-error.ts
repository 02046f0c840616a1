/**
 * The error of a bad configuration (a config file, an override, an unknown innovation or
 * scale). Its own module so that the innovation registry, which declares config switches
 * that src/config.ts validates, can throw it without an import cycle. Import it from
 * src/config.ts, which re-exports it.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
