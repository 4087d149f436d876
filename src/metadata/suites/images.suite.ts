import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ImageRepo } from '../images.js';
import { withRepo, type RepoFactory } from './factory.js';

/** The contract of the images role. */
export function imageRepoSuite(impl: string, factory: RepoFactory<ImageRepo>): void {
  test(`${impl} images: put, get, move a name, list by name, delete`, () =>
    withRepo(factory, (images) => {
      assert.equal(images.getImage('a:1'), undefined);
      images.putImage({ name: 'b:1', manifest: 'sha256:bb', created: 2 });
      images.putImage({ name: 'a:1', manifest: 'sha256:aa', created: 1 });
      assert.deepEqual(images.getImage('a:1'), { name: 'a:1', manifest: 'sha256:aa', created: 1 });
      images.putImage({ name: 'a:1', manifest: 'sha256:cc', created: 3 });
      assert.deepEqual(images.getImage('a:1'), { name: 'a:1', manifest: 'sha256:cc', created: 3 }, 'a name moves to the new manifest');
      assert.deepEqual(images.listImages().map((i) => i.name), ['a:1', 'b:1']);
      assert.equal(images.deleteImage('a:1'), true);
      assert.equal(images.deleteImage('a:1'), false, 'a second delete finds nothing');
      assert.deepEqual(images.listImages().map((i) => i.name), ['b:1']);
    }));
}
