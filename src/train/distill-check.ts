// Checks, on configs alone and before any work, that a student can be distilled from a teacher: same projection
// dim, image geometry and vocabulary (both see the same batch), and with hidden-state distillation (w_hid ≠ 0) the same
// hidden sizes and a student whose layers map onto the teacher's (a pruned copy). Dims: C hidden, L layers, E.
import { ConfigError } from '../errors.ts';
import { mapLayers } from '../distill/losses.ts';
import type { ClipConfig } from '../model/types.ts';
import type { Tower } from '../model/workspace.ts';

export interface DistillCheckOptions {
  /** Weight of L_hid (default 1): hidden-state distillation is on when ≠ 0. */
  wHid?: number;
  freeze?: Partial<Record<Tower, boolean>>;
  /** Names for messages (folders). */
  teacherName?: string;
  studentName?: string;
}

/** Throws a ConfigError that says what differs and what to do. */
export function checkDistillable(teacher: ClipConfig, student: ClipConfig, o: DistillCheckOptions = {}): void {
  const T = o.teacherName ?? 'teacher',
    S = o.studentName ?? 'student';
  const fail = (what: string) => {
    throw new ConfigError(`distill: ${what}`);
  };
  if (teacher.projectionDim !== student.projectionDim) {
    fail(
      `the teacher (${T}) projects to ${teacher.projectionDim} dims but the student (${S}) to ${student.projectionDim}; their embeddings must be comparable, so the projection dim must match.`,
    );
  }
  const tv = teacher.vision,
    sv = student.vision;
  if (tv.imageSize !== sv.imageSize || tv.patchSize !== sv.patchSize || tv.channels !== sv.channels) {
    fail(
      `the teacher takes ${tv.imageSize}px images in ${tv.patchSize}px patches, the student ${sv.imageSize}px in ${sv.patchSize}px; both must see the same pixels.`,
    );
  }
  if (teacher.text.vocabSize !== student.text.vocabSize) {
    fail(
      `the teacher's vocabulary has ${teacher.text.vocabSize} tokens, the student's ${student.text.vocabSize}; both must read the same token ids.`,
    );
  }
  if ((o.wHid ?? 1) === 0) return;
  for (const tw of ['text', 'vision'] as const) {
    if (o.freeze?.[tw]) continue;
    const t = teacher[tw],
      s = student[tw];
    if (t.hidden !== s.hidden) {
      fail(
        `${tw} tower: the student's hidden size ${s.hidden} differs from the teacher's ${t.hidden}. Hidden-state distillation (--w-hid ≠ 0) needs a ` +
          'student pruned from this teacher (hidden size is never pruned); pass --w-hid 0 to distil embeddings and similarities only.',
      );
    }
    if (s.heads.length > t.heads.length) {
      fail(
        `${tw} tower: the student has ${s.heads.length} layers, more than the teacher's ${t.heads.length}; it is not derived from this teacher (or pass --w-hid 0).`,
      );
    }
    for (let j = 1; j < s.layerMap.length; j++) {
      if (s.layerMap[j]! <= s.layerMap[j - 1]!)
        fail(
          `${tw} tower: the student's layer_map ${JSON.stringify(s.layerMap)} is not increasing; it is not a pruned copy of the teacher.`,
        );
    }
    const map = mapLayers(s, t, tw);
    map.forEach((m, j) => {
      if (s.heads[j]! > t.heads[m]! || s.ffn[j]! > t.ffn[m]! || s.headDim !== t.headDim) {
        fail(
          `${tw} tower: student layer ${j} (${s.heads[j]} heads of ${s.headDim}, FFN ${s.ffn[j]}) is wider than teacher layer ${m} ` +
            `(${t.heads[m]} heads of ${t.headDim}, FFN ${t.ffn[m]}) it maps to; the student is not derived from this teacher (or pass --w-hid 0).`,
        );
      }
    });
  }
}
