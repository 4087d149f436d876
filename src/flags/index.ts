export { parseKeyValues, parseAssignments } from './key-values.js';
