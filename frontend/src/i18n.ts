// The viewer's UI strings, Korean first. The page's <html lang> (set by Django
// from the user's choice) picks the language; a missing Korean string is a type
// error, so both dictionaries always have the same keys.

export type Language = "ko" | "en";

const en = {
  "app.title": "Viewer",
  "app.loading": "Loading the study…",
  "app.error": "The study could not be loaded.",
  "app.errorRetry": "Reload the page to try again.",
  "app.noSeries": "This study has no images to show yet.",
  "app.back": "Worklist",
  "series.title": "Series",
  "series.image": "1 image",
  "series.images": "{count} images",
  "series.frames": "{count} frames",
  "series.dragHint": "Drag a series onto a viewport, or double-click it.",
  "series.unnamed": "(no description)",
  "series.unsupported": "No images in this series",
  "viewport.empty": "Drop a series here",
  "viewport.loadFailed": "Images could not be loaded",
  "progress.loading": "Loading {done} / {total}",
  "tool.windowLevel": "Window/level",
  "tool.zoom": "Zoom",
  "tool.pan": "Pan",
  "tool.scroll": "Scroll",
  "tool.length": "Length",
  "tool.angle": "Angle",
  "tool.rectangle": "Rectangle ROI",
  "tool.ellipse": "Ellipse ROI",
  "tool.arrow": "Arrow with text",
  "tool.select": "Select",
  "action.fit": "Fit",
  "action.invert": "Invert",
  "action.rotateRight": "Rotate right",
  "action.rotateLeft": "Rotate left",
  "action.flipH": "Flip horizontal",
  "action.flipV": "Flip vertical",
  "action.reset": "Reset",
  "action.deleteMeasurement": "Delete measurement",
  "action.clearMeasurements": "Clear measurements",
  "action.play": "Play",
  "action.pause": "Pause",
  "action.tags": "DICOM tags",
  "action.help": "Shortcuts",
  "action.close": "Close",
  "action.layout": "Layout",
  "action.nextImage": "Next image",
  "action.prevImage": "Previous image",
  "action.firstImage": "First image",
  "action.lastImage": "Last image",
  "action.pageDown": "10 images forward",
  "action.pageUp": "10 images back",
  "action.fasterCine": "Faster",
  "action.slowerCine": "Slower",
  "action.nextViewport": "Next viewport",
  "action.layout1x1": "Layout 1×1",
  "action.layout1x2": "Layout 1×2",
  "action.layout2x2": "Layout 2×2",
  "action.presetN": "Window preset {n}",
  "wl.presets": "Window presets",
  "wl.file": "File window",
  "wl.auto": "Full range",
  "wl.brain": "Brain",
  "wl.subdural": "Subdural",
  "wl.stroke": "Stroke",
  "wl.lung": "Lung",
  "wl.mediastinum": "Mediastinum",
  "wl.abdomen": "Abdomen",
  "wl.liver": "Liver",
  "wl.bone": "Bone",
  "wl.temporalBone": "Temporal bone",
  "cine.fps": "Frame rate",
  "cine.fpsUnit": "fps",
  "overlay.image": "Im {index}/{count}",
  "overlay.frame": "Fr {index}/{count}",
  "overlay.series": "Se {number}",
  "overlay.zoom": "Zoom {zoom}",
  "overlay.window": "W {width} L {center}",
  "overlay.thickness": "Thk {value} mm",
  "overlay.location": "Loc {value} mm",
  "overlay.lossy": "Lossy compression",
  "overlay.noSpacing": "No pixel spacing: lengths in pixels",
  "overlay.imagerSpacing": "Lengths at detector (Imager Pixel Spacing)",
  "tags.title": "DICOM tags",
  "tags.filter": "Filter by tag, name or value",
  "tags.tag": "Tag",
  "tags.name": "Name",
  "tags.vr": "VR",
  "tags.value": "Value",
  "tags.bulk": "(bulk data)",
  "tags.noImage": "No image is shown in the active viewport.",
  "help.title": "Keyboard shortcuts",
  "help.mouse": "Mouse: left button = active tool, right button = zoom, middle button = pan, wheel = scroll through images.",
  "annotation.prompt": "Text for the arrow",
  "annotation.ok": "OK",
  "annotation.cancel": "Cancel",
  "stat.area": "Area",
  "stat.mean": "Mean",
  "stat.sd": "SD",
  "stat.min": "Min",
  "stat.max": "Max",
  "sex.M": "M",
  "sex.F": "F",
  "sex.O": "O",
} as const;

export type MessageKey = keyof typeof en;
export type Messages = Record<MessageKey, string>;

const ko: Messages = {
  "app.title": "영상 판독",
  "app.loading": "검사를 불러오는 중…",
  "app.error": "검사를 불러오지 못했습니다.",
  "app.errorRetry": "페이지를 새로 고쳐 다시 시도하세요.",
  "app.noSeries": "이 검사에는 아직 표시할 영상이 없습니다.",
  "app.back": "판독 목록",
  "series.title": "시리즈",
  "series.image": "영상 1장",
  "series.images": "영상 {count}장",
  "series.frames": "프레임 {count}개",
  "series.dragHint": "시리즈를 화면 칸으로 끌어 놓거나 두 번 누르세요.",
  "series.unnamed": "(설명 없음)",
  "series.unsupported": "이 시리즈에는 영상이 없습니다",
  "viewport.empty": "여기에 시리즈를 놓으세요",
  "viewport.loadFailed": "영상을 불러오지 못했습니다",
  "progress.loading": "불러오는 중 {done} / {total}",
  "tool.windowLevel": "밝기/대조도",
  "tool.zoom": "확대/축소",
  "tool.pan": "이동",
  "tool.scroll": "넘기기",
  "tool.length": "길이",
  "tool.angle": "각도",
  "tool.rectangle": "사각형 관심영역",
  "tool.ellipse": "타원 관심영역",
  "tool.arrow": "화살표 주석",
  "tool.select": "선택",
  "action.fit": "화면 맞춤",
  "action.invert": "반전",
  "action.rotateRight": "오른쪽 회전",
  "action.rotateLeft": "왼쪽 회전",
  "action.flipH": "좌우 뒤집기",
  "action.flipV": "상하 뒤집기",
  "action.reset": "초기화",
  "action.deleteMeasurement": "측정 삭제",
  "action.clearMeasurements": "측정 모두 지우기",
  "action.play": "재생",
  "action.pause": "일시정지",
  "action.tags": "DICOM 태그",
  "action.help": "단축키",
  "action.close": "닫기",
  "action.layout": "화면 배치",
  "action.nextImage": "다음 영상",
  "action.prevImage": "이전 영상",
  "action.firstImage": "첫 영상",
  "action.lastImage": "마지막 영상",
  "action.pageDown": "10장 앞으로",
  "action.pageUp": "10장 뒤로",
  "action.fasterCine": "빠르게",
  "action.slowerCine": "느리게",
  "action.nextViewport": "다음 화면 칸",
  "action.layout1x1": "화면 배치 1×1",
  "action.layout1x2": "화면 배치 1×2",
  "action.layout2x2": "화면 배치 2×2",
  "action.presetN": "창 설정 {n}",
  "wl.presets": "창 설정",
  "wl.file": "파일 기본값",
  "wl.auto": "전체 범위",
  "wl.brain": "뇌",
  "wl.subdural": "경막하",
  "wl.stroke": "뇌경색",
  "wl.lung": "폐",
  "wl.mediastinum": "종격동",
  "wl.abdomen": "복부",
  "wl.liver": "간",
  "wl.bone": "뼈",
  "wl.temporalBone": "측두골",
  "cine.fps": "재생 속도",
  "cine.fpsUnit": "fps",
  "overlay.image": "영상 {index}/{count}",
  "overlay.frame": "프레임 {index}/{count}",
  "overlay.series": "시리즈 {number}",
  "overlay.zoom": "배율 {zoom}",
  "overlay.window": "W {width} L {center}",
  "overlay.thickness": "두께 {value} mm",
  "overlay.location": "위치 {value} mm",
  "overlay.lossy": "손실 압축 영상",
  "overlay.noSpacing": "화소 간격 정보 없음: 길이는 화소 단위",
  "overlay.imagerSpacing": "검출기 기준 길이 (Imager Pixel Spacing)",
  "tags.title": "DICOM 태그",
  "tags.filter": "태그, 이름, 값으로 찾기",
  "tags.tag": "태그",
  "tags.name": "이름",
  "tags.vr": "VR",
  "tags.value": "값",
  "tags.bulk": "(대용량 데이터)",
  "tags.noImage": "선택한 화면 칸에 영상이 없습니다.",
  "help.title": "단축키",
  "help.mouse": "마우스: 왼쪽 단추 = 선택한 도구, 오른쪽 단추 = 확대/축소, 가운데 단추 = 이동, 휠 = 영상 넘기기.",
  "annotation.prompt": "화살표에 붙일 글",
  "annotation.ok": "확인",
  "annotation.cancel": "취소",
  "stat.area": "면적",
  "stat.mean": "평균",
  "stat.sd": "표준편차",
  "stat.min": "최소",
  "stat.max": "최대",
  "sex.M": "남",
  "sex.F": "여",
  "sex.O": "기타",
};

const dictionaries: Record<Language, Messages> = { ko, en };

/** The viewer's language from the page's `<html lang>` ("ko", "en-US", …); Korean by default. */
export function languageFrom(htmlLang: string | null | undefined): Language {
  const primary = (htmlLang ?? "").trim().toLowerCase().split(/[-_]/)[0];
  return primary === "en" ? "en" : "ko";
}

export type Params = Record<string, string | number>;

/** The message *key* in *language*, with `{name}` placeholders filled from *params*. */
export function translate(language: Language, key: MessageKey, params?: Params): string {
  const template = dictionaries[language][key] ?? en[key];
  if (!params) {
    return template;
  }
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

export type Translator = (key: MessageKey, params?: Params) => string;

export function translator(language: Language): Translator {
  return (key, params) => translate(language, key, params);
}

/** Every key, for tests that check both dictionaries are complete. */
export function messageKeys(): MessageKey[] {
  return Object.keys(en) as MessageKey[];
}

export function messagesFor(language: Language): Messages {
  return dictionaries[language];
}
