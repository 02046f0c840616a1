/** Errors from the data layer: they name the bad value and, where there is a choice, the valid ones. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}
