// New training job: teacher, student, dataset, target profiles and the main hyperparameters; POST /training-jobs.
// The API checks everything (paths exist, profiles known...) and its messages appear next to the fields.
import { api } from '../api.js';
import { errorFor, formMessage, formState, numberField, submit } from '../forms.js';
import { html } from '../lit.js';

const state = formState();
const FIELDS = ['name', 'teacher', 'teacher.arch', 'teacher.epochs', 'teacher.path', 'student', 'student.arch', 'dataset', 'dataset.kind', 'dataset.path', 'profiles',
  'hyperparameters.distill.epochs', 'hyperparameters.qat.epochs', 'hyperparameters.limits.trainSamples', 'hyperparameters.limits.testSamples', 'hyperparameters'];

function buildBody(form, profiles) {
  const v = (n) => form.elements[n].value.trim();
  const teacher = v('teacher.kind') === 'torchscript' ? { kind: 'torchscript', path: v('teacher.path') } : { kind: 'zoo', arch: v('teacher.arch'), ...(numberField(form, 'teacher.epochs') === undefined ? {} : { epochs: numberField(form, 'teacher.epochs') }) };
  const dataset = { kind: v('dataset.kind'), ...(v('dataset.path') ? { path: v('dataset.path') } : {}) };
  const hp = {};
  const distill = numberField(form, 'hyperparameters.distill.epochs');
  if (distill !== undefined) hp.distill = { epochs: distill };
  const qat = numberField(form, 'hyperparameters.qat.epochs');
  if (qat !== undefined) hp.qat = { epochs: qat };
  const trainSamples = numberField(form, 'hyperparameters.limits.trainSamples');
  const testSamples = numberField(form, 'hyperparameters.limits.testSamples');
  if (trainSamples !== undefined || testSamples !== undefined) hp.limits = { ...(trainSamples === undefined ? {} : { trainSamples }), ...(testSamples === undefined ? {} : { testSamples }) };
  const chosen = profiles.filter((p) => form.elements[`profile:${p.id}`].checked).map((p) => p.id);
  return {
    ...(v('name') ? { name: v('name') } : {}),
    teacher,
    student: { kind: 'zoo', arch: v('student.arch') },
    dataset,
    ...(chosen.length ? { profiles: chosen } : {}),
    hyperparameters: hp,
  };
}

export async function trainingNewPage({ refresh }) {
  const profiles = await api('/profiles');
  if (state.created) {
    const id = state.created.id;
    state.created = null;
    location.hash = `#/training/${encodeURIComponent(id)}`;
    return html`<p class="muted">queued ${id}</p>`;
  }
  const send = (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    return submit(state, { path: '/training-jobs', fields: FIELDS, rerender: refresh, build: () => buildBody(form, profiles.items) });
  };
  return html`<p><a href="#/training">← Training jobs</a></p><h1>New training job</h1>
    <form id="training-form" class="form card" novalidate @submit=${send}>
      <label>model name <input name="name" placeholder="student"></label>${errorFor(state, 'name')}
      <fieldset><legend>Teacher</legend>
        <label>kind <select name="teacher.kind"><option value="zoo">train one (zoo)</option><option value="torchscript">a TorchScript file</option></select></label>${errorFor(state, 'teacher')}
        <label>zoo architecture <select name="teacher.arch"><option>resnet-teacher</option><option>torchvision-resnet18</option><option>torchvision-mobilenet_v2</option></select></label>${errorFor(state, 'teacher.arch')}
        <label>teacher epochs <input name="teacher.epochs" inputmode="numeric" placeholder="1"></label>${errorFor(state, 'teacher.epochs')}
        <label>TorchScript path <input name="teacher.path" placeholder="/abs/path/teacher.pt"></label>${errorFor(state, 'teacher.path')}
      </fieldset>
      <fieldset><legend>Student</legend>
        <label>architecture <select name="student.arch"><option>compact-cnn</option><option>mobilenetv2-mini</option></select></label>${errorFor(state, 'student.arch')}${errorFor(state, 'student')}
      </fieldset>
      <fieldset><legend>Dataset</legend>
        <label>kind <select name="dataset.kind"><option>fashion-mnist</option><option>npz</option><option>imagefolder</option><option>csv</option></select></label>${errorFor(state, 'dataset.kind')}
        <label>path on the control-plane host <input name="dataset.path" placeholder="/usr/share/datasets/fashion-mnist"></label>${errorFor(state, 'dataset.path')}${errorFor(state, 'dataset')}
      </fieldset>
      <fieldset><legend>Target profiles (each brings its quantization recipe)</legend>
        ${profiles.items.map((p) => html`<label class="check"><input type="checkbox" name=${`profile:${p.id}`}> ${p.id}</label>`)}
        ${errorFor(state, 'profiles')}
      </fieldset>
      <fieldset><legend>Hyperparameters (blank: the trainer's defaults)</legend>
        <label>distillation epochs <input name="hyperparameters.distill.epochs" inputmode="numeric" placeholder="1"></label>${errorFor(state, 'hyperparameters.distill.epochs')}
        <label>QAT epochs <input name="hyperparameters.qat.epochs" inputmode="numeric" placeholder="1"></label>${errorFor(state, 'hyperparameters.qat.epochs')}
        <label>training samples (limit) <input name="hyperparameters.limits.trainSamples" inputmode="numeric" placeholder="all"></label>${errorFor(state, 'hyperparameters.limits.trainSamples')}
        <label>test samples (limit) <input name="hyperparameters.limits.testSamples" inputmode="numeric" placeholder="all"></label>${errorFor(state, 'hyperparameters.limits.testSamples')}
        ${errorFor(state, 'hyperparameters')}
      </fieldset>
      <div><button class="primary" type="submit" ?disabled=${state.busy}>Queue job</button></div>
      ${formMessage(state)}
    </form>`;
}
