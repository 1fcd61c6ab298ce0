// Camera, microphone and speaker selection, used on the pre-join page and in the meeting's
// device settings. The speaker choice needs HTMLMediaElement.setSinkId and is hidden where the
// browser has none (Safari).
import { h, field, messageBox } from './dom.js';
import { canSelectSpeaker } from './env.js';
import { LocalMedia, describeMediaError, loadDevicePrefs, saveDevicePrefs } from './media.js';

export function deviceSelectors(media, { onSpeakerChange } = {}) {
  const camera = h('select', { 'data-testid': 'camera-select' });
  const microphone = h('select', { 'data-testid': 'mic-select' });
  const speaker = h('select', { 'data-testid': 'speaker-select' });
  const message = messageBox('device-message');
  const speakerField = field('Speaker', speaker);
  if (!canSelectSpeaker) speakerField.hidden = true;
  const el = h('div', { class: 'device-selectors' },
    field('Camera', camera), field('Microphone', microphone), speakerField, message.el);

  const fill = (select, devices, currentId, noneText) => {
    const previous = select.value;
    select.replaceChildren();
    if (!devices.length) {
      select.append(h('option', { value: '' }, noneText));
      select.disabled = true;
      return;
    }
    select.disabled = false;
    for (const device of devices) select.append(h('option', { value: device.id }, device.label));
    const wanted = currentId || previous;
    if (wanted && devices.some((d) => d.id === wanted)) select.value = wanted;
  };

  const currentDeviceId = (track) => {
    if (!track || typeof track.getSettings !== 'function') return null;
    return track.getSettings().deviceId || null;
  };

  async function refresh() {
    const devices = await LocalMedia.devices();
    const prefs = loadDevicePrefs();
    fill(camera, devices.cameras, currentDeviceId(media.videoTrack) || prefs.cameraId, 'No camera found');
    fill(microphone, devices.microphones, currentDeviceId(media.audioTrack) || prefs.micId, 'No microphone found');
    fill(speaker, devices.speakers, prefs.speakerId, 'Default speaker');
    if (!devices.speakers.length) speakerField.hidden = true;
    else if (canSelectSpeaker) speakerField.hidden = false;
  }

  const switchTo = async (kind, select) => {
    if (!select.value) return;
    message.clear();
    const err = await media.useDevice(kind, select.value);
    if (err) message.show(describeMediaError(err, kind === 'audio' ? 'microphone' : 'camera'));
    await refresh();
  };
  camera.addEventListener('change', () => switchTo('video', camera));
  microphone.addEventListener('change', () => switchTo('audio', microphone));
  speaker.addEventListener('change', () => {
    saveDevicePrefs({ speakerId: speaker.value });
    if (onSpeakerChange) onSpeakerChange(speaker.value);
  });
  media.addEventListener('devicechange', refresh);

  return { el, refresh, dispose: () => media.removeEventListener('devicechange', refresh) };
}
