/**
 * A Python data-science sandbox: numpy, pandas and matplotlib installed through the shared pip cache, the analysis
 * code copied last (it changes most often), and a notebook-style file server as the start command.
 *
 *   kiln build -t data-science:latest examples/python-data-science/template.ts
 */
import { Template, waitForPort } from 'kiln';

export default Template()
  .fromPythonImage()
  // stable steps first: they stay cached the longest
  .setEnvs({ PYTHONUNBUFFERED: '1', MPLBACKEND: 'Agg' })
  .pipInstall('numpy', 'pandas', 'matplotlib')
  .makeDir('/home/user/work', { mode: 0o755 })
  .setWorkdir('/home/user/work')
  // frequently changing steps last
  .copy('notebooks/', './notebooks/')
  .copy('analysis.py', './')
  .setStartCmd(['python3', '-m', 'http.server', '8888'], waitForPort(8888));
